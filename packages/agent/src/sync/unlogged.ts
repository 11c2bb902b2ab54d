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
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@slotctl/shared';
import { partitionReport } from '../cleanup/space.js';
import { isDelayedDeleted, MARKER_MAILBOX } from '../cyrus/mailboxes.js';
import type { LogPosition } from '../logs/slot-logs.js';
import { userOf } from './seed.js';

/** Free space on the meta partition kept beyond what the logged lines take. */
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

interface UnloggedFile {
  marks: Record<string, UnloggedMark>;
  /** Where the agent had read each slot's log to: a restarted agent reads what came meanwhile. */
  logs: Record<string, LogPosition>;
}

/** STATE_DIR/unlogged.json cannot be read: the agent does not start without knowing which slots are marked. */
export class UnloggedStateError extends Error {
  constructor(path: string, why: string) {
    super(`${path}: ${why}. It records which slots made changes their sync logs missed; repair it, or remove it to forget them (their changes may then never replicate)`);
    this.name = 'UnloggedStateError';
  }
}

const SAVE_EVERY_MS = 2000;

/**
 * Every slot's mark, and how far each slot's log was read, in STATE_DIR/unlogged.json (atomic writes, one at a
 * time). A first mark is written at once; later counts and read positions at most every 2 s. A failed write is
 * retried with the next change and said through `onSaveError`.
 */
export class UnloggedStore {
  private readonly path: string;
  private data: UnloggedFile = { marks: {}, logs: {} };
  private writing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(stateDir: string, private readonly onSaveError: (err: Error) => void = () => undefined) {
    this.path = join(stateDir, 'unlogged.json');
  }

  async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UnloggedStateError(this.path, `not valid JSON (${(err as Error).message})`);
    }
    const file = parsed as Partial<UnloggedFile> | null;
    if (!file || typeof file !== 'object' || typeof file.marks !== 'object' || file.marks === null) throw new UnloggedStateError(this.path, 'no "marks" object in it');
    this.data = { marks: file.marks, logs: file.logs && typeof file.logs === 'object' ? file.logs : {} };
  }

  get(slot: string): UnloggedMark | undefined {
    return this.data.marks[slot];
  }

  slots(): string[] {
    return Object.keys(this.data.marks);
  }

  logPosition(slot: string): LogPosition | undefined {
    return this.data.logs[slot];
  }

  /** One more failed write for `slot`; true when it is the first (the slot was not marked). Counted at once. */
  mark(slot: string, epoch: number, line: string, at = new Date()): boolean {
    const before = this.data.marks[slot];
    this.data.marks = { ...this.data.marks, [slot]: { ...before, since: before?.since ?? at.toISOString(), epoch: before?.epoch ?? epoch, lines: (before?.lines ?? 0) + 1, last: line.slice(0, 500) } };
    if (before) this.saveSoon();
    else void this.save().catch(() => undefined);
    return !before;
  }

  /** Clears the mark if no failed write came since it counted `lines`; false (kept) otherwise. */
  async clear(slot: string, lines: number): Promise<boolean> {
    const mark = this.data.marks[slot];
    if (!mark) return true;
    if (mark.lines !== lines || mark.quarantined) return false;
    await this.forget(slot);
    return true;
  }

  /** The slot was demoted still marked: these mailboxes join its quarantine until a recovery. */
  async quarantine(slot: string, epoch: number, mailboxes: string[]): Promise<void> {
    const mark = this.data.marks[slot];
    if (!mark) return;
    this.data.marks = { ...this.data.marks, [slot]: { ...mark, quarantined: { epoch, mailboxes } } };
    await this.save();
  }

  /** A recovery verified what the mark put at risk, or the slot left the machine. */
  async forget(slot: string): Promise<void> {
    if (!this.data.marks[slot]) return;
    const { [slot]: _gone, ...rest } = this.data.marks;
    this.data.marks = rest;
    await this.save();
  }

  /** The log follower's read positions (saved within 2 s when they changed). */
  setLogPositions(positions: Record<string, LogPosition>): void {
    if (JSON.stringify(positions) === JSON.stringify(this.data.logs)) return;
    this.data.logs = positions;
    this.saveSoon();
  }

  /** Every change written (at agent exit). */
  async flush(): Promise<void> {
    if (this.timer) await this.save();
    await this.writing;
  }

  private saveSoon(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.save().catch(() => undefined), SAVE_EVERY_MS);
    this.timer.unref();
  }

  private save(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const text = `${JSON.stringify(this.data, null, 2)}\n`;
    this.writing = this.writing
      .catch(() => undefined)
      .then(() => writeFileAtomic(this.path, text, 0o600))
      .catch((err: Error) => {
        this.onSaveError(err);
        this.saveSoon(); // tried again
        throw err;
      });
    return this.writing;
  }
}

export interface FullSyncDeps {
  /** Every mailbox of the slot (internal names). */
  listMailboxes: (imapdConf: string) => Promise<string[]>;
  /** Appends the lines to the slot's sync log. */
  logSync: (imapdConf: string, users: readonly string[], mailboxes: readonly string[]) => Promise<void>;
  /** Free bytes and inodes on the filesystem of `path`. */
  room: (path: string) => Promise<{ bytes: number; inodes: number }>;
  /** How long the slot's log lines take to reach the follower (a failed write of our own lines shows by then). */
  settleMs: number;
  /** Reads the slot's log up to now (the follower's poll): failed writes so far are counted. */
  catchUp: () => Promise<void>;
  /** Whether the mark may still be cleared (false once a demotion of the slot began). */
  mayClear: () => boolean;
}

export type FullSyncOutcome = { done: true; users: number; mailboxes: number } | { done: false; why: string };

export async function room(path: string): Promise<{ bytes: number; inodes: number }> {
  const r = await partitionReport('meta', path, undefined, { usage: false }); // a statfs, and zeros when it fails: then nothing is tried
  return { bytes: Number(r.freeBytes), inodes: Number(r.freeInodes) };
}

/** Room the lines need: each under 128 bytes, a margin besides, and a few inodes (a new log file). */
export const roomNeeded = (lines: number) => MIN_FREE_BYTES + 128 * lines;

/**
 * For a marked slot: logs a sync of every user and mailbox, then clears the mark if no write of the log failed
 * meanwhile. `done: false` says why the mark stays (it is tried again later).
 */
export async function logFullSync(store: UnloggedStore, slot: string, layout: { imapdConf: string; metaPath: string }, deps: FullSyncDeps): Promise<FullSyncOutcome> {
  await deps.catchUp();
  const mark = store.get(slot);
  if (!mark) return { done: true, users: 0, mailboxes: 0 };
  const seen = mark.lines;
  const work = fullSyncWork(await deps.listMailboxes(layout.imapdConf));
  const lines = work.users.length + work.mailboxes.length + 1;
  const free = await deps.room(layout.metaPath);
  if (free.bytes < roomNeeded(lines) || free.inodes < 10) {
    return { done: false, why: `its meta partition ${layout.metaPath} has ${free.bytes} bytes and ${free.inodes} inodes free (${roomNeeded(lines)} bytes and 10 inodes needed to log a sync of ${work.mailboxes.length} mailbox(es))` };
  }
  await deps.logSync(layout.imapdConf, work.users, work.mailboxes);
  await new Promise((r) => setTimeout(r, deps.settleMs));
  await deps.catchUp();
  if (!deps.mayClear()) return { done: false, why: 'the slot is being demoted: its mailboxes go into its quarantine instead' };
  if (!(await store.clear(slot, seen))) return { done: false, why: `writing the sync log failed again while the sync of ${work.mailboxes.length} mailbox(es) was logged` };
  return { done: true, users: work.users.length, mailboxes: work.mailboxes.length };
}
