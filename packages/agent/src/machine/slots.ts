// All slots of this machine: one supervisor and one sync-dir watcher per slot, converged to the desired state,
// and the reports the session sends up. Startup safety: at start the agent only re-adopts what is running; it
// starts nothing until the coordinator's desired state has arrived and been checked against the persisted epochs.
import { readdir } from 'node:fs/promises';
import { withContext, type DesiredSlot__Output, type Logger, type SlotReport, type SlotState } from '@slotctl/shared';
import type { SlotLogs } from '../logs/slot-logs.js';
import { SlotSupervisor, type SlotRuntime } from '../slot/supervisor.js';
import type { ApplyPlan, AppliedSlots } from '../state/apply-plan.js';
import { SyncWatcher } from '../sync/watch.js';
import type { SlotLifecycle } from '../slot/lifecycle.js';
import type { ReplayStore } from '../state/replay-store.js';
import { replaySyncLogs } from '../sync/replay.js';
import { summarizeMailboxes, writeSyncMarker, type MailboxSummary } from '../cyrus/mailboxes.js';
import { EventBudget } from './event-budget.js';
import { currentLogIdentity, logIdentityPresent } from '../sync/backlog-reader.js';
import { isSyncLogName } from '../sync/backlog.js';
import type { FencedMaster } from '../fence/fence-file.js';
import { slotLayout } from '../slot/layout.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { markRecovered, quarantineLeftovers, readQuarantine, type QuarantineReport } from '../sync/quarantine.js';
import { pushMailboxes } from '../recover/push.js';
import { logUserSync, mailboxGuids, type MailboxGuidList } from '../cyrus/mailboxes.js';
import type { RecoverReport } from '@slotctl/shared';
import { seedReplica } from '../sync/seed.js';
import { runCyrExpire } from '../cleanup/expire.js';
import { partitionReport } from '../cleanup/space.js';
import type { CleanupReport, PartitionReport, SeedReport } from '@slotctl/shared';

const STATE: Record<SlotLifecycle, SlotState> = {
  absent: 'ABSENT',
  configured: 'CONFIGURED',
  starting: 'STARTING',
  serving: 'SERVING',
  stopping: 'STOPPING',
  stopped: 'STOPPED',
  failed: 'FAILED',
};

const LOG_EVENTS_PER_WINDOW = 10;
const LOG_EVENT_WINDOW_MS = 10_000;

export interface SlotsOptions {
  runtime: Omit<SlotRuntime, 'onChange' | 'onEvent' | 'log'>;
  logs: SlotLogs | undefined;
  log: Logger;
  /** Something changed that the coordinator should hear about (debounced by the caller). */
  onChange: () => void;
  onEvent: (slot: string, kind: string, message: string) => void;
  recentLogLines: number;
  stallAfterMs: number;
  replays: ReplayStore;
  /** The fence must know every slot that may run as master before it starts; false when it could not be told. */
  publishMasters: (masters: FencedMaster[]) => Promise<boolean>;
  /** Recovery's verification: a new master's message GUIDs, asked of the agent of `machine`. */
  targetGuids: (machine: string, slot: string, mailboxes: string[]) => Promise<MailboxGuidList[]>;
  /** Recovery's last step after a clash: the new master's agent logs a user sync of these users. */
  targetUserSync: (machine: string, slot: string, users: string[]) => Promise<void>;
  /** cyrus:mail, for files the agent writes for Cyrus (undefined when not root). */
  owner: () => Promise<{ uid: number; gid: number } | undefined>;
  /** How often each slot's partitions are measured (free space, bytes waiting for cleanup). */
  diskReportIntervalMs: number;
}

export class MachineSlots {
  private readonly supervisors = new Map<string, SlotSupervisor>();
  private readonly watchers = new Map<string, SyncWatcher>();
  private lastLogReport = 0;
  private readonly replaying = new Set<string>();
  /** The last mailbox check per slot (a read: kept in memory, re-run after an agent restart if still asked for). */
  private readonly checks = new Map<string, { op: string; mailboxes: MailboxSummary[]; error: string }>();
  /** Per master slot: the epoch at which a marker change was seen to reach the replica. */
  private readonly confirmed = new Map<string, number>();
  private readonly confirming = new Set<string>();
  /** Per slot: what its quarantine holds (read once, and again after every change). */
  private readonly quarantines = new Map<string, QuarantineReport>();
  /** Per returning slot: the last recovery push it ran (kept in memory: a push is safe to run again). */
  private readonly recovers = new Map<string, RecoverReport>();
  private readonly recovering = new Set<string>();
  /** Per master slot: the last full initial sync it ran to a new replica (a seed is safe to run again). */
  private readonly seeds = new Map<string, SeedReport>();
  private readonly seeding = new Set<string>();
  /** Per slot: its last cleanup (kept in memory: the coordinator records it when reported) and its partitions. */
  private readonly cleanups = new Map<string, CleanupReport>();
  private readonly cleaning = new Set<string>();
  private readonly partitions = new Map<string, PartitionReport[]>();
  private diskTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private logReportTimer: NodeJS.Timeout | undefined;
  private readonly eventBudget = new EventBudget(LOG_EVENTS_PER_WINDOW, LOG_EVENT_WINDOW_MS, (slot, suppressed) =>
    this.options.onEvent(slot, 'cyrus-log-suppressed', `${suppressed} more notable Cyrus log line(s) in ${LOG_EVENT_WINDOW_MS / 1000} s not sent as events (see slotctl slot logs ${slot})`),
  );

  constructor(private readonly options: SlotsOptions) {
    options.logs?.follow(
      (slot, line) => {
        const kind = /SYNCERROR/.test(line) ? 'sync-error' : /IOERROR/.test(line) ? 'io-error' : 'cyrus-error';
        // A sync loop writes ~100 such lines a second: the first few of each window become events, the rest a count.
        if (!this.eventBudget.take(slot)) return;
        const s = this.supervisors.get(slot);
        withContext(options.log, { slot, store: s?.desired?.store, epoch: s?.desired?.epoch }).warn({ kind, line }, 'notable Cyrus log line');
        options.onEvent(slot, kind, line);
      },
      () => {
        // New log lines travel with the next report: at most one report for them every 2 s, the last one never lost.
        if (this.logReportTimer) return;
        const wait = Math.max(0, this.lastLogReport + 2000 - Date.now());
        this.logReportTimer = setTimeout(() => {
          this.logReportTimer = undefined;
          this.lastLogReport = Date.now();
          options.onChange();
        }, wait);
        this.logReportTimer.unref();
      },
    );
  }

  private supervisor(name: string): SlotSupervisor {
    let s = this.supervisors.get(name);
    if (!s) {
      s = new SlotSupervisor(name, {
        ...this.options.runtime,
        log: this.options.log,
        onChange: this.options.onChange,
        onEvent: (kind, message) => this.options.onEvent(name, kind, message),
      });
      this.options.logs?.track(name);
      this.supervisors.set(name, s);
    }
    return s;
  }

  private watch(s: SlotSupervisor): void {
    if (this.watchers.has(s.name) || !s.layout) return;
    const watcher = new SyncWatcher({
      syncDir: s.layout.syncDir,
      peer: () => (s.desired?.role === 'MASTER' && s.desired.peerIp ? { ip: s.desired.peerIp, port: this.options.runtime.ports.sync } : undefined),
      masterPid: () => s.pid,
      lastError: async () => (await this.options.logs?.tail(s.name, 200))?.reverse().find((l) => /SYNCERROR|IOERROR|bailing out|Fatal/.test(l)),
      onChange: () => this.options.onChange(),
      stallAfterMs: this.options.stallAfterMs,
      log: withContext(this.options.log, { slot: s.name, store: s.desired?.store }),
    });
    this.watchers.set(s.name, watcher);
    watcher.start();
  }

  /** At agent start: take over slots whose cyrmaster is still running. Starts nothing. */
  async adopt(applied: AppliedSlots): Promise<string[]> {
    const adopted: string[] = [];
    for (const [name, slot] of Object.entries(applied)) {
      const s = this.supervisor(name);
      if (await s.adopt(slot)) adopted.push(name);
      this.watch(s);
    }
    return adopted;
  }

  /** Every slot that is, or is about to be, master: what the fence guards. */
  private fencedMasters(extra: Readonly<Record<string, AppliedSlot>> = {}): FencedMaster[] {
    const out = new Map<string, FencedMaster>();
    const add = (slot: string, d: AppliedSlot | undefined) => {
      if (d?.role !== 'MASTER') return;
      const layout = slotLayout(d.dataPath, d.metaPath);
      out.set(slot, { slot, store: d.store, epoch: d.epoch, pidFile: layout.pidFile, imapdConf: layout.imapdConf, serviceIp: d.serviceIp });
    };
    for (const s of this.supervisors.values()) add(s.name, s.desired);
    for (const [slot, d] of Object.entries(extra)) add(slot, d);
    return [...out.values()];
  }

  /** The lease ran out: every master stops at once (the fence process does the same on its own). */
  async fence(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.fence()));
  }

  /** The lease is held again: masters that were fenced or held back start. */
  async resume(): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.resume()));
  }

  /** Converges every slot the plan accepted; refused slots are left exactly as they are. */
  async apply(plan: ApplyPlan, desired: readonly DesiredSlot__Output[]): Promise<void> {
    const byName = new Map(desired.map((d) => [d.slot, d]));
    // the fence learns of new masters before they start, and forgets old ones only once they are replicas
    // (a failed write is logged by the keeper; the agent's own backup fence still covers every master it runs)
    await this.options.publishMasters(this.fencedMasters(plan.next));
    const work: Promise<void>[] = [];
    for (const result of plan.results) {
      if (result.result === 'REFUSED') continue;
      const slot = plan.next[result.slot!];
      const d = byName.get(result.slot!);
      if (!slot || !d) continue;
      const s = this.supervisor(result.slot!);
      work.push(
        this.quarantineIfReplica(s, slot)
          .then(() => s.converge(slot, !d.stopped, d.startGeneration, d.recoverListen))
          .then(() => this.watch(s))
          .then(() => (d.replayOp && d.stopped ? this.replayOnce(s, d.replayOp) : undefined))
          .then(() => (d.checkOp ? this.checkOnce(s, d.checkOp, d.checkMailboxes) : undefined))
          .then(() => (d.recoverOp && d.stopped && d.recoverTarget ? this.recoverOnce(s, d) : undefined))
          .then(() => (d.seedOp && d.role === 'MASTER' ? void this.seedOnce(s, d.seedOp) : undefined))
          .then(() => (d.cleanupOp ? void this.cleanupOnce(s, d) : undefined))
          .then(() => void this.confirmReplication(s)),
      );
    }
    for (const name of plan.removed) {
      const s = this.supervisors.get(name);
      if (!s) continue;
      work.push(
        s.remove().then(async () => {
          await this.watchers.get(name)?.stop();
          this.watchers.delete(name);
          this.supervisors.delete(name);
          this.options.logs?.untrack(name);
        }),
      );
    }
    const results = await Promise.allSettled(work);
    for (const r of results) if (r.status === 'rejected') this.options.log.error({ err: (r.reason as Error).message }, 'converging a slot failed');
    await this.options.publishMasters(this.fencedMasters());
    void this.reconcileNow().catch((err: Error) => this.options.log.error({ err: err.message }, 'address reconciliation failed'));
  }

  /**
   * Replays a stopped slot's leftover sync logs to its replica, once per operation id: the answer is persisted
   * before it is reported, so a resent desired state gets the same answer, not a second run.
   */
  private async replayOnce(s: SlotSupervisor, op: string): Promise<void> {
    if (this.options.replays.get(s.name)?.op === op || this.replaying.has(s.name)) return;
    const d = s.desired;
    // only while no cyrmaster of the slot runs
    if (!d || !s.layout || !['stopped', 'configured', 'failed'].includes(s.lifecycle)) return;
    this.replaying.add(s.name);
    try {
      const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch: d.epoch, op });
      const result = d.peerIp
        ? await replaySyncLogs(s.layout.imapdConf, s.layout.syncDir, { ip: d.peerIp, port: this.options.runtime.ports.sync }, log)
        : { ok: false, replayed: [], failedFile: '', error: 'the slot has no replica to replay to', mailboxes: [], ms: 0 };
      // What this slot now holds of every mailbox the replayed logs named: the coordinator compares it with the replica.
      let mailboxes: MailboxSummary[] = [];
      let error = result.error ?? '';
      if (result.ok && result.mailboxes.length) {
        try {
          mailboxes = await summarizeMailboxes(s.layout.imapdConf, result.mailboxes);
        } catch (err) {
          error = `replayed, but the mailboxes could not be summarized: ${(err as Error).message}`;
        }
      }
      await this.options.replays.save(s.name, {
        op,
        ok: result.ok && !error,
        replayed: result.replayed,
        failedFile: result.failedFile ?? '',
        error,
        finishedAt: new Date().toISOString(),
        ms: Math.round(result.ms),
        mailboxes,
      });
      log.info({ ok: result.ok, replayed: result.replayed, failedFile: result.failedFile, error: result.error }, 'replay finished');
      await this.watchers.get(s.name)?.refresh();
      this.options.onChange();
    } finally {
      this.replaying.delete(s.name);
    }
  }

  /**
   * A slot that is to be a replica keeps no sync log: what an old master left (its changes the replica may lack) is
   * moved into quarantine before the slot can start in any sync role. A master still running is stopped first.
   */
  private async quarantineIfReplica(s: SlotSupervisor, next: AppliedSlot): Promise<void> {
    if (next.role !== 'REPLICA') return;
    if (s.desired?.role === 'MASTER' && (s.lifecycle === 'serving' || s.lifecycle === 'starting')) await s.stop(`demoted to replica at epoch ${next.epoch}`);
    const layout = slotLayout(next.dataPath, next.metaPath);
    const folder = await quarantineLeftovers(layout.syncDir, layout.quarantineDir, next.epoch);
    if (folder) withContext(this.options.log, { slot: s.name, store: next.store, epoch: next.epoch }).warn({ folder }, 'leftover sync logs of a former master moved into quarantine: they name changes the new master may lack (slotctl store recover)');
    if (folder || !this.quarantines.has(s.name)) this.quarantines.set(s.name, await readQuarantine(layout.quarantineDir));
  }

  /**
   * Level-triggered addresses and processes: every `everyMs` (and after each desired state) the interface's
   * addresses are listed once and each slot repairs its own drift (see SlotSupervisor.reconcile).
   */
  startReconciling(everyMs: number): void {
    const tick = async () => {
      await this.reconcileNow().catch((err: Error) => this.options.log.error({ err: err.message }, 'address reconciliation failed; trying again'));
      this.reconcileTimer = setTimeout(() => void tick(), everyMs);
      this.reconcileTimer.unref();
    };
    this.reconcileTimer = setTimeout(() => void tick(), everyMs);
    this.reconcileTimer.unref();
  }

  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;

  /** One pass now; asked for while one runs, one more pass follows it (bursts of address events coalesce). */
  reconcileNow(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.reconcileAgain = false;
        const bound = await this.options.runtime.vip.list();
        await Promise.all([...this.supervisors.values()].map((s) => s.reconcile(bound)));
      } while (this.reconcileAgain);
    })().finally(() => {
      this.reconciling = undefined;
    });
    return this.reconciling;
  }

  /** Measures every slot's partitions now and then (a walk of the partitions and one mbexamine per slot). */
  startDiskReports(): void {
    const tick = async () => {
      for (const s of [...this.supervisors.values()]) await this.measure(s);
      this.options.onChange();
      this.diskTimer = setTimeout(() => void tick(), this.options.diskReportIntervalMs);
      this.diskTimer.unref();
    };
    // not in the agent's first seconds (it is starting and adopting slots): after one interval, at most 30 s
    this.diskTimer = setTimeout(() => void tick(), Math.min(this.options.diskReportIntervalMs, 30_000));
    this.diskTimer.unref();
  }

  stopDiskReports(): void {
    clearTimeout(this.diskTimer);
  }

  private async measure(s: SlotSupervisor): Promise<PartitionReport[]> {
    const d = s.desired;
    if (!d || !s.layout) return [];
    // index headers are read only from a slot that runs (mbexamine takes the mailbox locks Cyrus uses)
    const conf = s.lifecycle === 'serving' ? s.layout.imapdConf : undefined;
    const reports = [await partitionReport('data', d.dataPath, conf), await partitionReport('meta', d.metaPath, undefined)];
    this.partitions.set(s.name, reports);
    return reports;
  }

  /** cyr_expire on this slot once per operation id, in the background; a slot that does not run is reported, not cleaned. */
  private async cleanupOnce(s: SlotSupervisor, d: DesiredSlot__Output): Promise<void> {
    const op = d.cleanupOp;
    if (this.cleanups.get(s.name)?.op === op || this.cleaning.has(s.name) || !s.layout) return;
    const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch: d.epoch, op });
    const now = new Date().toISOString();
    if (s.lifecycle !== 'serving') {
      this.cleanups.set(s.name, { op, ok: false, exitCode: -1, startedAt: now, finishedAt: now, ms: 0, freedBytes: 0, error: `slot ${s.name} is ${s.lifecycle}, not running: not cleaned`, tail: [] });
      this.options.onChange();
      return;
    }
    this.cleaning.add(s.name);
    try {
      const layout = s.layout;
      // test hook: a broken config path for this one slot (SLOTCTL_TEST_CYR_EXPIRE_BREAK=SLOT)
      const conf = process.env.SLOTCTL_TEST_CYR_EXPIRE_BREAK === s.name ? `${layout.imapdConf}.missing` : layout.imapdConf;
      const report = await runCyrExpire({
        op,
        imapdConf: conf,
        retention: { expunged: d.cleanupExpunged, deleted: d.cleanupDeleted, duplicates: d.cleanupDuplicates },
        timeoutMs: Math.max(1, d.cleanupTimeoutS) * 1000,
        waiting: async () => (await this.measure(s)).reduce((a, p) => a + Number(p.deletedBytes) + Number(p.expungedBytes), 0),
        log,
      });
      this.cleanups.set(s.name, report);
    } catch (err) {
      this.cleanups.set(s.name, { op, ok: false, exitCode: -1, startedAt: now, finishedAt: new Date().toISOString(), ms: 0, freedBytes: 0, error: (err as Error).message, tail: [] });
    } finally {
      this.cleaning.delete(s.name);
    }
    this.options.onChange();
  }

  /** A full initial sync to this master's new replica, once per operation id, in the background (it takes a while). */
  private async seedOnce(s: SlotSupervisor, op: string): Promise<void> {
    const d = s.desired;
    if (this.seeds.get(s.name)?.op === op || this.seeding.has(s.name) || !s.layout || !d?.peerIp || s.lifecycle !== 'serving') return;
    this.seeding.add(s.name);
    const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch: d.epoch, op });
    try {
      this.seeds.set(s.name, await seedReplica(op, s.layout.imapdConf, { ip: d.peerIp, port: this.options.runtime.ports.sync }, log));
    } catch (err) {
      log.error({ err: (err as Error).message }, 'full initial sync failed');
      this.seeds.set(s.name, { op, ok: false, users: 0, mailboxes: 0, messages: 0, ms: 0, error: (err as Error).message, failed: [], finishedAt: new Date().toISOString() });
    } finally {
      this.seeding.delete(s.name);
    }
    this.options.onChange();
  }

  private async recoverOnce(s: SlotSupervisor, d: DesiredSlot__Output): Promise<void> {
    if (this.recovers.get(s.name)?.op === d.recoverOp || this.recovering.has(s.name) || !s.layout) return;
    if (!['stopped', 'configured', 'failed'].includes(s.lifecycle)) return;
    this.recovering.add(s.name);
    const layout = s.layout;
    const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch: d.epoch, op: d.recoverOp });
    try {
      log.info({ target: d.recoverTarget, mailboxes: d.recoverMailboxes.length }, 'recovery: pushing quarantined mailboxes to the new master');
      let report: RecoverReport;
      try {
        report = await pushMailboxes({
          op: d.recoverOp,
          layout,
          targetIp: d.recoverTarget,
          mailboxes: d.recoverMailboxes,
          ports: this.options.runtime.ports,
          auth: this.options.runtime.auth,
          owner: await this.options.owner(),
          slotIp: d.slotIp,
          vip: this.options.runtime.vip,
          targetGuids: (names) => this.options.targetGuids(d.recoverTargetMachine, d.recoverTargetSlot, names),
          targetUserSync: (users) => this.options.targetUserSync(d.recoverTargetMachine, d.recoverTargetSlot, users),
          log,
        });
      } catch (err) {
        report = { op: d.recoverOp, done: true, mailboxes: [], error: (err as Error).message };
      }
      const complete = !report.error && (report.mailboxes ?? []).every((m) => (m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0);
      if (complete) {
        await markRecovered(layout.quarantineDir, d.recoverOp);
        this.quarantines.set(s.name, await readQuarantine(layout.quarantineDir));
      }
      this.recovers.set(s.name, report);
      log.info({ complete, mailboxes: report.mailboxes?.length, error: report.error }, 'recovery push finished');
      this.options.onChange();
    } finally {
      this.recovering.delete(s.name);
    }
  }

  /** A partner's recovery asks: the GUIDs of some mailboxes of one of this machine's slots. */
  async guidsOf(slot: string, names: readonly string[]): Promise<MailboxGuidList[]> {
    const s = this.supervisors.get(slot);
    if (!s?.layout) throw new Error(`slot ${slot} is not on this machine`);
    return mailboxGuids(s.layout.imapdConf, names.slice(0, 10_000));
  }

  /** A partner's recovery asks this (new master) slot to log a user-level sync of some users. */
  async userSyncOn(slot: string, users: readonly string[]): Promise<void> {
    const s = this.supervisors.get(slot);
    if (!s?.layout || s.desired?.role !== 'MASTER') throw new Error(`slot ${slot} is not a master on this machine`);
    await logUserSync(s.layout.imapdConf, users.slice(0, 10_000));
  }

  /** Summarizes the mailboxes the coordinator asks about, once per operation id (a read: safe while running). */
  private async checkOnce(s: SlotSupervisor, op: string, names: readonly string[]): Promise<void> {
    if (this.checks.get(s.name)?.op === op || !s.layout) return;
    const log = withContext(this.options.log, { slot: s.name, store: s.desired?.store, epoch: s.desired?.epoch, op });
    try {
      const mailboxes = await summarizeMailboxes(s.layout.imapdConf, names.slice(0, 100_000));
      this.checks.set(s.name, { op, mailboxes, error: '' });
      log.info({ mailboxes: mailboxes.length }, 'mailbox check done');
    } catch (err) {
      this.checks.set(s.name, { op, mailboxes: [], error: (err as Error).message });
      log.warn({ err: (err as Error).message }, 'mailbox check failed');
    }
    this.options.onChange();
  }

  /**
   * A master that serves at an epoch not yet confirmed writes a marker line into its sync log and waits until the
   * rolling sync_client has consumed that file: proof that replication flows to the replica it has now.
   */
  private async confirmReplication(s: SlotSupervisor): Promise<void> {
    const d = s.desired;
    if (!d || d.role !== 'MASTER' || s.lifecycle !== 'serving' || !s.layout || this.confirming.has(s.name)) return;
    if ((this.confirmed.get(s.name) ?? 0) >= d.epoch) return;
    const epoch = d.epoch;
    const layout = s.layout;
    const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch });
    this.confirming.add(s.name);
    try {
      await writeSyncMarker(layout.imapdConf);
      // If sync_client renamed `log` already, wait for the directory to empty instead.
      const marker = await currentLogIdentity(layout.syncDir);
      const consumed = async () => (marker ? !(await logIdentityPresent(layout.syncDir, marker)) : (await readdir(layout.syncDir)).every((f) => !isSyncLogName(f)));
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline && s.desired?.epoch === epoch && s.lifecycle === 'serving') {
        if (await consumed()) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (s.desired?.epoch === epoch && s.lifecycle === 'serving' && Date.now() < deadline) {
        this.confirmed.set(s.name, epoch);
        log.info('replication confirmed: a marker change reached the replica');
        this.options.onChange();
      } else log.warn('replication not confirmed: the marker was not consumed');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not write a replication marker');
    } finally {
      this.confirming.delete(s.name);
    }
  }

  async reports(): Promise<SlotReport[]> {
    const out: SlotReport[] = [];
    for (const s of this.supervisors.values()) {
      const d = s.desired;
      const shown = s.reported;
      out.push({
        slot: s.name,
        state: STATE[shown.lifecycle],
        role: d?.role ?? 'ROLE_UNSPECIFIED',
        epochApplied: d?.epoch ?? 0,
        backlog: this.watchers.get(s.name)?.backlog,
        lastError: s.lastError,
        recentLog: (await this.options.logs?.tail(s.name, this.options.recentLogLines)) ?? [],
        pid: s.pid ?? 0,
        stateReason: shown.reason,
        crashesInWindow: s.crashesInWindow,
        replay: this.options.replays.get(s.name),
        check: this.checks.get(s.name),
        syncConfirmedEpoch: this.confirmed.get(s.name) ?? 0,
        // a replica always says what its quarantine holds (empty too): the coordinator learns a returned old master is clean
        quarantine: d?.role === 'REPLICA' ? this.quarantines.get(s.name) : undefined,
        recover: this.recovers.get(s.name),
        recoverListening: s.recoverListening,
        seed: this.seeds.get(s.name),
        cleanup: this.cleanups.get(s.name),
        partitions: this.partitions.get(s.name) ?? [],
      });
    }
    return out;
  }

  async stopAll(why: string): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop(why)));
  }

  /** Agent exit without stopping Cyrus: stop watching, leave every cyrmaster running. */
  async detachAll(): Promise<void> {
    this.options.logs?.stop();
    clearTimeout(this.logReportTimer);
    clearTimeout(this.reconcileTimer);
    for (const s of this.supervisors.values()) s.detach();
    await Promise.all([...this.watchers.values()].map((w) => w.stop()));
  }
}
