// Changes a slot's Cyrus made but could not write to its sync log. Cyrus commits a change, then appends a line naming
// it to the sync log (sync_log.c); when that append fails — the meta partition that holds the sync directory is full
// or failing — it only says so in syslog ("write() to …/sync/log failed: No space left on device") and the change is
// acknowledged all the same. No rolling sync_client, replay or quarantine ever hears of it: it reaches the replica
// only if something later touches the same mailbox, and is lost with the machine. (Found by the soak, seed 20261204:
// two APPENDs acknowledged while a master's meta partition was full never reached its replica.)
//
// So the agent marks such a slot — persisted in STATE_DIR/unlogged.json, an agent restart does not forget — and
// reports the mark with its backlog (a failover meanwhile knows every mailbox is at risk; a switchover is refused).
// As soon as the sync log can be written again it logs a sync of every user and every mailbox of the slot
// (cyr_synclog): from then on the sync log itself names the changes, and the rolling sync_client, a replay or a
// quarantine deal with them like any other. Only then is the mark cleared.
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@slotctl/shared';
import { isDelayedDeleted, MARKER_MAILBOX } from '../cyrus/mailboxes.js';
import { userOf } from './seed.js';

/** Below this much free space on the meta partition, logging a sync of every mailbox is not tried. */
export const MIN_FREE_BYTES = 1024 * 1024;

/**
 * Pure: the file a Cyrus log line says a sync log write failed for (sync_log.c's messages), or undefined. The caller
 * checks that it is in the slot's own sync directory.
 */
export function syncLogWriteFailure(message: string): string | undefined {
  const m =
    /\bwrite\(\) to (\/\S+) failed\b/.exec(message) ??
    /\bsync_log\(\): Unable to write to log file (\/\S+?):? /.exec(message) ??
    /\bsync_log\(\): Failed to lock (\/\S+) for /.exec(message);
  return m?.[1];
}

/** Pure: what to log for a slot whose mailboxes are these (internal names): each user whole, and every mailbox. */
export function fullSyncWork(mailboxes: readonly string[]): { users: string[]; mailboxes: string[] } {
  const users = new Set<string>();
  const named: string[] = [];
  for (const name of mailboxes) {
    if (isDelayedDeleted(name) || name === MARKER_MAILBOX) continue;
    const user = userOf(name);
    if (user) users.add(user);
    named.push(name);
  }
  // USER lines make the rolling sync_client compare each user whole (a folder deleted meanwhile goes too); MAILBOX
  // lines name every folder, so that a quarantine of them names every folder a recovery must compare
  return { users: [...users].sort(), mailboxes: named.sort() };
}

export interface UnloggedMark {
  /** The first failure seen (ISO). */
  since: string;
  /** The slot's epoch then. */
  epoch: number;
  /** Failed writes seen so far (a mark is cleared only if none came while the sync of everything was logged). */
  lines: number;
  /** The last such line. */
  last: string;
  /** Set when the slot was demoted to replica still marked: every mailbox it held, at risk until recovered. */
  quarantined?: { epoch: number; mailboxes: string[] };
}

/** Every slot's mark, in STATE_DIR/unlogged.json (atomic writes, one at a time). */
export class UnloggedStore {
  private readonly path: string;
  private marks: Record<string, UnloggedMark> = {};
  private writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string) {
    this.path = join(stateDir, 'unlogged.json');
  }

  async load(): Promise<void> {
    try {
      this.marks = JSON.parse(await readFile(this.path, 'utf8')) as Record<string, UnloggedMark>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  get(slot: string): UnloggedMark | undefined {
    return this.marks[slot];
  }

  slots(): string[] {
    return Object.keys(this.marks);
  }

  /** One more failed write for `slot`; true when it is the first (the slot was not marked). */
  async mark(slot: string, epoch: number, line: string, at = new Date()): Promise<boolean> {
    const before = this.marks[slot];
    this.marks = { ...this.marks, [slot]: { ...before, since: before?.since ?? at.toISOString(), epoch: before?.epoch ?? epoch, lines: (before?.lines ?? 0) + 1, last: line.slice(0, 500) } };
    await this.save();
    return !before;
  }

  /** Clears the mark if no failed write came since it counted `lines`; false (kept) otherwise. */
  async clear(slot: string, lines: number): Promise<boolean> {
    const mark = this.marks[slot];
    if (!mark) return true;
    if (mark.lines !== lines || mark.quarantined) return false;
    await this.forget(slot);
    return true;
  }

  /** The slot was demoted still marked: these mailboxes join its quarantine until a recovery. */
  async quarantine(slot: string, epoch: number, mailboxes: string[]): Promise<void> {
    const mark = this.marks[slot];
    if (!mark) return;
    this.marks = { ...this.marks, [slot]: { ...mark, quarantined: { epoch, mailboxes } } };
    await this.save();
  }

  /** A recovery verified what the mark put at risk. */
  async forget(slot: string): Promise<void> {
    const { [slot]: _gone, ...rest } = this.marks;
    this.marks = rest;
    await this.save();
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.marks, null, 2)}\n`;
    this.writing = this.writing.catch(() => undefined).then(() => writeFileAtomic(this.path, text, 0o600));
    return this.writing;
  }
}

export interface FullSyncDeps {
  /** Every mailbox of the slot (internal names). */
  listMailboxes: (imapdConf: string) => Promise<string[]>;
  /** Appends the lines to the slot's sync log. */
  logSync: (imapdConf: string, users: readonly string[], mailboxes: readonly string[]) => Promise<void>;
  /** Free bytes on the filesystem of `path`. */
  freeBytes: (path: string) => Promise<number>;
  /** How long the slot's log lines take to reach the follower (a failed write of our own lines shows by then). */
  settleMs: number;
}

export type FullSyncOutcome = { done: true; users: number; mailboxes: number } | { done: false; why: string };

export async function freeBytes(path: string): Promise<number> {
  const fs = await statfs(path);
  return fs.bavail * fs.bsize;
}

/**
 * For a marked slot: logs a sync of every user and mailbox, then clears the mark if no write of the log failed
 * meanwhile. `done: false` says why the mark stays (it is tried again later).
 */
export async function logFullSync(store: UnloggedStore, slot: string, layout: { imapdConf: string; metaPath: string }, deps: FullSyncDeps): Promise<FullSyncOutcome> {
  const mark = store.get(slot);
  if (!mark) return { done: true, users: 0, mailboxes: 0 };
  const free = await deps.freeBytes(layout.metaPath);
  if (free < MIN_FREE_BYTES) return { done: false, why: `its meta partition ${layout.metaPath} has ${free} bytes free (at least ${MIN_FREE_BYTES} needed to log the sync)` };
  const seen = mark.lines;
  const work = fullSyncWork(await deps.listMailboxes(layout.imapdConf));
  await deps.logSync(layout.imapdConf, work.users, work.mailboxes);
  await new Promise((r) => setTimeout(r, deps.settleMs));
  if (!(await store.clear(slot, seen))) return { done: false, why: `writing the sync log failed again while the sync of ${work.mailboxes.length} mailbox(es) was logged` };
  return { done: true, users: work.users.length, mailboxes: work.mailboxes.length };
}
