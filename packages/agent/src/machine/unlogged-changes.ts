// What the agent does about changes its slots' Cyrus could not write to their sync logs (sync/unlogged.ts says why):
//   - a failed write in a slot's log marks the slot (persisted), with an event and a report at once;
//   - a marked master gets a sync of every user and mailbox logged as soon as its meta partition has room again
//     (each reconcile pass, at most every 10 s after a failed try, and before a replay of its logs: a switchover or
//     an ordered stop);
//   - a marked slot that is demoted to replica (a failover took its store) gets every mailbox it holds written into
//     its quarantine report: the returning old master waits for `slotctl store recover` like one with sync logs left
//     (a mark that arrives after the demotion is handled the same way by the next pass);
//   - a verified recovery of all those mailboxes clears that mark; a slot removed from the machine takes its mark along.
import { withContext, type Backlog, type Logger } from '@slotctl/shared';
import { logSyncLines, summarizeAllMailboxes } from '../cyrus/mailboxes.js';
import type { SlotSupervisor } from '../slot/supervisor.js';
import type { QuarantineReport } from '../sync/quarantine.js';
import { EMPTY_BACKLOG } from '../sync/watch.js';
import { fullSyncWork, logFullSync, room, syncLogWriteFailure, type FullSyncDeps, type UnloggedStore } from '../sync/unlogged.js';

/** A failure of this slot's own sync log (its path in the slot's sync dir); other lines are not ours. */
export function ownSyncLogFailure(s: SlotSupervisor | undefined, line: string): boolean {
  const file = syncLogWriteFailure(line);
  return Boolean(file && s?.layout && file.startsWith(`${s.layout.syncDir}/`));
}

/** After a try that could not log the sync, the next pass waits this long. */
const RETRY_AFTER_MS = 10_000;

export class UnloggedChanges {
  private readonly running = new Map<string, Promise<boolean>>();
  /** Slots being demoted (from their quarantine step until their converge): no try may clear their marks. */
  private readonly demoting = new Set<string>();
  private readonly notBefore = new Map<string, number>();
  /** The last reason a slot's sync was not logged (said once, not every pass). */
  private readonly lastWhy = new Map<string, string>();

  constructor(
    private readonly store: UnloggedStore,
    private readonly o: {
      log: Logger;
      onChange: () => void;
      onEvent: (slot: string, kind: string, message: string) => void;
      /** Reads every slot's log up to now (SlotLogs.poll). */
      catchUp: () => Promise<void>;
      deps?: Partial<FullSyncDeps>;
    },
  ) {}

  private deps(slot: string): FullSyncDeps {
    return {
      listMailboxes: async (conf) => (await summarizeAllMailboxes(conf)).map((m) => m.name),
      logSync: async (conf, users, mailboxes) => {
        const skipped = await logSyncLines(conf, users, mailboxes);
        if (skipped.length) this.o.log.warn({ slot, skipped: skipped.slice(0, 20) }, 'names that do not look like users or mailboxes were not logged');
      },
      room,
      settleMs: 1500,
      catchUp: this.o.catchUp,
      mayClear: () => !this.demoting.has(slot),
      ...this.o.deps,
    };
  }

  /** A line of the slot's log said a write of its sync log failed. */
  noticed(s: SlotSupervisor, line: string): void {
    const epoch = s.desired?.epoch ?? 0;
    if (!this.store.mark(s.name, epoch, line)) return;
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
    await this.o.catchUp();
    const mark = this.store.get(s.name);
    if (!mark) return true;
    // a replica's config writes no sync log: its mailboxes go into its quarantine instead (quarantine())
    if (mark.quarantined || this.demoting.has(s.name) || s.desired?.role !== 'MASTER' || !s.layout) return false;
    const log = withContext(this.o.log, { slot: s.name, store: s.desired.store, epoch: s.desired.epoch });
    try {
      const outcome = await logFullSync(this.store, s.name, s.layout, this.deps(s.name));
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
    this.notBefore.set(s.name, performance.now() + RETRY_AFTER_MS);
    return false;
  }

  private said(slot: string, why: string, log: Logger): void {
    if (this.lastWhy.get(slot) === why) return;
    this.lastWhy.set(slot, why);
    log.warn({ why }, 'sync of every mailbox not logged yet: trying again');
  }

  /** Each reconcile pass: every marked master (not sooner than 10 s after a failed try), every marked replica. */
  async pass(supervisors: Iterable<SlotSupervisor>): Promise<void> {
    const now = performance.now();
    const work: Promise<unknown>[] = [];
    for (const s of supervisors) {
      const mark = this.store.get(s.name);
      if (!mark || this.demoting.has(s.name)) continue;
      if (s.desired?.role === 'MASTER' && (this.notBefore.get(s.name) ?? 0) <= now) work.push(this.logFullSync(s));
      if (s.desired?.role !== 'REPLICA' || !s.layout) continue;
      // serving as replica: the coordinator let it start (recovered, or no failover to recover from) and its master's
      // changes now replace what it held: the mark has nothing left to protect
      if (s.lifecycle === 'serving' && mark.quarantined) {
        this.o.log.warn({ slot: s.name, since: mark.since }, 'a replica that serves again: its mark of unlogged changes is dropped');
        work.push(this.removed(s.name).then(() => this.o.onChange()));
        continue;
      }
      // marked after its demotion (a line read late): the same as a mark it was demoted with
      if (!mark.quarantined) work.push(this.quarantine(s, s.layout, s.desired.epoch).catch((err: Error) => this.said(s.name, err.message, this.o.log)));
    }
    await Promise.all(work);
  }

  /** A demotion of the slot begins: a try that runs ends first, and none clears the mark until demotionDone(). */
  async beginDemotion(slot: string): Promise<void> {
    this.demoting.add(slot);
    await this.running.get(slot)?.catch(() => undefined);
    await this.o.catchUp();
  }

  demotionDone(slot: string): void {
    this.demoting.delete(slot);
  }

  /**
   * A marked slot demoted to replica (stopped, its sync logs quarantined): every mailbox it holds joins its
   * quarantine, kept in the mark (STATE_DIR), not on the meta partition that may still be full.
   */
  async quarantine(s: SlotSupervisor, layout: { imapdConf: string }, epoch: number): Promise<void> {
    const mark = this.store.get(s.name);
    if (!mark || mark.quarantined) return;
    const { mailboxes } = fullSyncWork(await this.deps(s.name).listMailboxes(layout.imapdConf));
    await this.store.quarantine(s.name, epoch, mailboxes);
    withContext(this.o.log, { slot: s.name, store: s.desired?.store, epoch }).warn(
      { since: mark.since, mailboxes: mailboxes.length },
      'demoted with changes its sync log missed: every mailbox it holds is in its quarantine (slotctl store recover)',
    );
    this.o.onChange();
  }

  /**
   * The quarantine as reported: with the mark's mailboxes once the slot was demoted; a replica marked but not listed
   * yet reports a quarantine that is not empty (never "nothing lost") until its next pass lists them.
   */
  quarantineOf(slot: string, report: QuarantineReport | undefined): QuarantineReport | undefined {
    const mark = this.store.get(slot);
    if (!report || !mark) return report;
    return {
      ...report,
      files: [...report.files, `unlogged-since-${mark.since}`],
      mailboxes: [...new Set([...report.mailboxes, ...(mark.quarantined?.mailboxes ?? [])])].sort(),
    };
  }

  /** A verified recovery of `mailboxes`: the demoted mark goes if they cover every mailbox it named. */
  async recovered(slot: string, mailboxes: readonly string[]): Promise<void> {
    const q = this.store.get(slot)?.quarantined;
    if (!q) return;
    const done = new Set(mailboxes);
    const left = q.mailboxes.filter((m) => !done.has(m));
    if (left.length === 0) await this.store.forget(slot);
    else this.o.log.warn({ slot, left: left.slice(0, 20), count: left.length }, 'recovery verified, but not every mailbox the unlogged changes put at risk: they stay in the quarantine report');
  }

  /** The slot left this machine: its mark goes with it. */
  async removed(slot: string): Promise<void> {
    this.running.delete(slot);
    this.notBefore.delete(slot);
    this.lastWhy.delete(slot);
    await this.store.forget(slot);
  }
}
