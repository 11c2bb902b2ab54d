// What the agent does about changes its slots' Cyrus could not write to their sync logs (sync/unlogged.ts says why):
//   - a failed write in a slot's log marks the slot (persisted), with an event and a report at once;
//   - a marked master gets a sync of every user and mailbox logged as soon as its meta partition has room again
//     (each reconcile pass, and before a replay of its logs: a switchover or an ordered stop);
//   - a marked slot that is demoted to replica (a failover took its store) gets every mailbox it holds written into
//     its quarantine report: the returning old master waits for `slotctl store recover` like one with sync logs left;
//   - a verified recovery clears that mark.
import { withContext, type Backlog, type Logger } from '@slotctl/shared';
import { logMailboxSync, logUserSync, summarizeAllMailboxes } from '../cyrus/mailboxes.js';
import type { SlotSupervisor } from '../slot/supervisor.js';
import type { QuarantineReport } from '../sync/quarantine.js';
import { freeBytes, fullSyncWork, logFullSync, syncLogWriteFailure, type FullSyncDeps, type UnloggedStore } from '../sync/unlogged.js';

/** A failure of this slot's own sync log (its path in the slot's sync dir); other lines are not ours. */
export function ownSyncLogFailure(s: SlotSupervisor | undefined, line: string): boolean {
  const file = syncLogWriteFailure(line);
  return Boolean(file && s?.layout && file.startsWith(`${s.layout.syncDir}/`));
}

export const EMPTY_BACKLOG: Backlog = { files: 0, bytes: 0, mailboxes: 0, mailboxNames: [], oldestChangeAgeMs: 0, stalled: false, stallReason: '' };

export class UnloggedChanges {
  private readonly running = new Map<string, Promise<boolean>>();
  /** The last reason a slot's sync was not logged (said once, not every pass). */
  private readonly lastWhy = new Map<string, string>();

  constructor(
    private readonly store: UnloggedStore,
    private readonly o: {
      log: Logger;
      onChange: () => void;
      onEvent: (slot: string, kind: string, message: string) => void;
      deps?: Partial<FullSyncDeps>;
    },
  ) {}

  private deps(): FullSyncDeps {
    return {
      listMailboxes: async (conf) => (await summarizeAllMailboxes(conf)).map((m) => m.name),
      logSync: async (conf, users, mailboxes) => {
        await logUserSync(conf, users);
        await logMailboxSync(conf, mailboxes);
      },
      freeBytes,
      settleMs: 1500,
      ...this.o.deps,
    };
  }

  /** A line of the slot's log said a write of its sync log failed. */
  async noticed(s: SlotSupervisor, line: string): Promise<void> {
    const epoch = s.desired?.epoch ?? 0;
    if (!(await this.store.mark(s.name, epoch, line))) return;
    const since = this.store.get(s.name)!.since;
    withContext(this.o.log, { slot: s.name, store: s.desired?.store, epoch }).error(
      { line },
      'Cyrus could not write the sync log: changes it acknowledges are not replicated until a sync of every mailbox is logged, which the agent does once the meta partition has room',
    );
    this.o.onEvent(s.name, 'sync-log-unwritable', `changes since ${since} may be missing from the sync log of ${s.name} (${line.slice(0, 300)}): free space on its meta partition; the agent then logs a sync of every mailbox`);
    this.o.onChange();
  }

  marked(slot: string): boolean {
    return this.store.get(slot) !== undefined;
  }

  /** The slot's backlog as reported: with the time its unlogged changes began, if any. */
  backlogOf(slot: string, backlog: Backlog | undefined): Backlog | undefined {
    const mark = this.store.get(slot);
    if (!mark) return backlog;
    return { ...(backlog ?? EMPTY_BACKLOG), unloggedSince: mark.since };
  }

  /**
   * A marked master (running or stopped, its master config in place): logs a sync of everything if it can. True
   * when the slot is not marked any more. One at a time per slot.
   */
  logFullSync(s: SlotSupervisor): Promise<boolean> {
    const busy = this.running.get(s.name);
    if (busy) return busy;
    const run = this.attempt(s).finally(() => this.running.delete(s.name));
    this.running.set(s.name, run);
    return run;
  }

  private async attempt(s: SlotSupervisor): Promise<boolean> {
    const mark = this.store.get(s.name);
    if (!mark || mark.quarantined) return !mark;
    const log = withContext(this.o.log, { slot: s.name, store: s.desired?.store, epoch: s.desired?.epoch });
    if (s.desired?.role !== 'MASTER' || !s.layout) return false; // a replica's config logs nothing: see quarantine()
    try {
      const outcome = await logFullSync(this.store, s.name, s.layout, this.deps());
      if (outcome.done) {
        this.lastWhy.delete(s.name);
        log.warn({ since: mark.since, failedWrites: mark.lines, users: outcome.users, mailboxes: outcome.mailboxes }, 'sync of every mailbox logged: the changes the sync log missed will replicate');
        this.o.onEvent(s.name, 'sync-log-restored', `a sync of ${outcome.users} user(s) and ${outcome.mailboxes} mailbox(es) logged: changes since ${mark.since} that the sync log missed (${mark.lines} failed write(s)) will replicate`);
        this.o.onChange();
        return true;
      }
      this.said(s.name, outcome.why, log);
    } catch (err) {
      this.said(s.name, (err as Error).message, log);
    }
    return false;
  }

  private said(slot: string, why: string, log: Logger): void {
    if (this.lastWhy.get(slot) === why) return;
    this.lastWhy.set(slot, why);
    log.warn({ why }, 'sync of every mailbox not logged yet: trying again');
  }

  /** Each reconcile pass: every marked master. */
  async pass(supervisors: Iterable<SlotSupervisor>): Promise<void> {
    const marked = [...supervisors].filter((s) => this.marked(s.name) && s.desired?.role === 'MASTER');
    await Promise.all(marked.map((s) => this.logFullSync(s)));
  }

  /**
   * A marked slot demoted to replica (stopped, its sync logs quarantined): every mailbox it holds joins its
   * quarantine, kept in the mark (STATE_DIR), not on the meta partition that may still be full.
   */
  async quarantine(s: SlotSupervisor, layout: { imapdConf: string }, epoch: number): Promise<void> {
    const mark = this.store.get(s.name);
    if (!mark || mark.quarantined) return;
    const { mailboxes } = fullSyncWork(await this.deps().listMailboxes(layout.imapdConf));
    await this.store.quarantine(s.name, epoch, mailboxes);
    withContext(this.o.log, { slot: s.name, store: s.desired?.store, epoch }).warn(
      { since: mark.since, mailboxes: mailboxes.length },
      'demoted with changes its sync log missed: every mailbox it holds is in its quarantine (slotctl store recover)',
    );
  }

  /** The quarantine as reported: with the mark's mailboxes once the slot was demoted. */
  quarantineOf(slot: string, report: QuarantineReport | undefined): QuarantineReport | undefined {
    const q = this.store.get(slot)?.quarantined;
    if (!report || !q) return report;
    return {
      ...report,
      files: [...report.files, `unlogged-since-${this.store.get(slot)!.since}`],
      mailboxes: [...new Set([...report.mailboxes, ...q.mailboxes])].sort(),
    };
  }

  /** A verified recovery of the slot's quarantine: its demoted mark goes with it. */
  async recovered(slot: string): Promise<void> {
    if (this.store.get(slot)?.quarantined) await this.store.forget(slot);
  }
}
