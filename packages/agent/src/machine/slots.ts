// All slots of this machine: one supervisor and one sync-dir watcher per slot, converged to the desired state,
// and the reports the session sends up. Startup safety: at start the agent only re-adopts what is running; it
// starts nothing until the coordinator's desired state has arrived and been checked against the persisted epochs.
import { coalesced, UnsafePathError, withContext, type DesiredSlot__Output, type Logger, type SlotReport, type SlotState } from '@slotctl/shared';
import type { SlotLogs } from '../logs/slot-logs.js';
import { SlotSupervisor, type SlotRuntime } from '../slot/supervisor.js';
import type { ApplyPlan, AppliedSlots } from '../state/apply-plan.js';
import { SyncWatcher } from '../sync/watch.js';
import type { SlotLifecycle } from '../slot/lifecycle.js';
import type { ReplayStore } from '../state/replay-store.js';
import { EventBudget } from './event-budget.js';
import { stopInOrder, type OrderedStopOptions } from './ordered-stop.js';
import type { FencedMaster } from '../fence/fence-file.js';
import { slotLayout } from '../slot/layout.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { quarantineLeftovers, readQuarantine, type QuarantineReport } from '../sync/quarantine.js';
import { logUserSync, mailboxGuids, type MailboxGuidList } from '../cyrus/mailboxes.js';
import { partitionReport } from '../cleanup/space.js';
import type { PartitionReport } from '@slotctl/shared';
import { requestOf } from '../requests/handler.js';
import { REQUEST_HANDLERS } from '../requests/handlers.js';
import { RequestRunner } from '../requests/runner.js';
import type { SlotObservation } from '../observe/metrics.js';
import type { UnloggedStore } from '../sync/unlogged.js';
import { ownSyncLogFailure, UnloggedChanges } from './unlogged-changes.js';
import type { ReportUrgency } from '../coordinator/report-pacer.js';

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

/** How long a fresh agent asks for the start hold at most while its first desired state is awaited and applied. */
const FRESH_HOLD_MS = 60_000;

export interface SlotsOptions {
  runtime: Omit<SlotRuntime, 'onChange' | 'onEvent' | 'log'>;
  logs: SlotLogs | undefined;
  log: Logger;
  /** Something changed that the coordinator should hear about (paced by the caller: a backlog's size less often). */
  onChange: (what?: ReportUrgency) => void;
  onEvent: (slot: string, kind: string, message: string) => void;
  recentLogLines: number;
  stallAfterMs: number;
  replays: ReplayStore;
  /** Slots whose Cyrus made changes it could not write to their sync logs (unlogged-changes.ts). */
  unlogged: UnloggedStore;
  /** The fence must know every slot that may run as master before it starts; false when it could not be told. */
  publishMasters: (masters: FencedMaster[]) => Promise<boolean>;
  /** Recovery's verification: a new master's message GUIDs, asked of the agent of `machine`. */
  targetGuids: (machine: string, slot: string, mailboxes: string[]) => Promise<MailboxGuidList[]>;
  /** Recovery's last step after a clash: the new master's agent logs a user sync of these users. */
  targetUserSync: (machine: string, slot: string, users: string[]) => Promise<void>;
  /** How often each slot's partitions are measured (free space, bytes waiting for cleanup). */
  diskReportIntervalMs: number;
  /** Bytes a second a seed from a master here averages at most (0: none). */
  seedRateLimit?: number;
}

export class MachineSlots {
  private readonly supervisors = new Map<string, SlotSupervisor>();
  private readonly watchers = new Map<string, SyncWatcher>();
  private lastLogReport = -Infinity;
  /** Per slot: what its quarantine holds (read once, and again after every change). */
  private readonly quarantines = new Map<string, QuarantineReport>();
  /** The slot requests of the desired state, each run once per id (requests/). */
  private readonly requests: RequestRunner;
  private readonly partitions = new Map<string, PartitionReport[]>();
  private diskTimer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private logReportTimer: NodeJS.Timeout | undefined;
  private readonly unlogged: UnloggedChanges;
  private readonly eventBudget = new EventBudget(LOG_EVENTS_PER_WINDOW, LOG_EVENT_WINDOW_MS, (slot, suppressed) =>
    this.options.onEvent(slot, 'cyrus-log-suppressed', `${suppressed} more notable Cyrus log line(s) in ${LOG_EVENT_WINDOW_MS / 1000} s not sent as events (see slotctl slot logs ${slot})`),
  );

  /** The first desired state has been applied (see `starting`). */
  private firstApplied = false;
  private readonly createdAt = performance.now();

  constructor(private readonly options: SlotsOptions) {
    this.unlogged = new UnloggedChanges(options.unlogged, { log: options.log, onChange: options.onChange, onEvent: options.onEvent, catchUp: async () => options.logs?.poll() });
    this.requests = new RequestRunner({
      handlers: REQUEST_HANDLERS,
      log: options.log,
      onChange: options.onChange,
      stores: { replay: options.replays },
      services: {
        runtime: options.runtime,
        targetGuids: options.targetGuids,
        targetUserSync: options.targetUserSync,
        refreshBacklog: async (slot) => {
          await this.watchers.get(slot)?.refresh();
        },
        quarantineChanged: async (s, recovered) => {
          if (s.layout) this.quarantines.set(s.name, await readQuarantine(s.layout));
          await this.unlogged.recovered(s.name, recovered);
        },
        logUnlogged: (s) => this.unlogged.logFullSync(s),
        measure: (s) => this.measure(s),
        metrics: options.runtime.metrics,
        seedRateLimit: options.seedRateLimit ?? 0,
      },
    });
    options.logs?.follow(
      (slot, line) => {
        const s = this.supervisors.get(slot);
        if (ownSyncLogFailure(s, line)) {
          // its own event (the first line); every line counted in the slot's mark
          this.unlogged.noticed(s!, line);
          return;
        }
        const kind = /SYNCERROR/.test(line) ? 'sync-error' : /IOERROR/.test(line) ? 'io-error' : 'cyrus-error';
        // A sync loop writes ~100 such lines a second: the first few of each window become events, the rest a count.
        if (!this.eventBudget.take(slot)) return;
        withContext(options.log, { slot, store: s?.desired?.store, epoch: s?.desired?.epoch }).warn({ kind, line }, 'notable Cyrus log line');
        options.onEvent(slot, kind, line);
      },
      () => {
        // New log lines travel with the next report: at most one report for them every 2 s, the last one never lost.
        if (this.logReportTimer) return;
        const wait = Math.max(0, this.lastLogReport + 2000 - performance.now());
        this.logReportTimer = setTimeout(() => {
          this.logReportTimer = undefined;
          this.lastLogReport = performance.now();
          // how far each log was read, so that a restarted agent reads what came while it was down
          if (options.logs) options.unlogged.setLogPositions(options.logs.positions());
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
        masterLines: (pid, sinceMs) => this.options.logs?.masterLines(name, pid, sinceMs) ?? Promise.resolve([]),
      });
      this.options.logs?.track(name, this.options.unlogged.logPosition(name));
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
      onChange: (_backlog, urgent) => this.options.onChange(urgent ? 'state' : 'backlog'),
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

  /**
   * A slot is starting (its cyrmaster spawned, reloaded or waiting to restart, not yet serving), or this agent has
   * not finished applying its first desired state (its slots start the moment it comes: the first heartbeats are
   * acknowledged in that storm; at most its first FRESH_HOLD_MS, should that state be slow to come or to apply): the
   * heartbeats ask for a start hold (liveness/rules.ts of the coordinator).
   */
  starting(): boolean {
    if (!this.firstApplied && performance.now() - this.createdAt < FRESH_HOLD_MS) return true;
    for (const s of this.supervisors.values()) if (s.lifecycle === 'starting') return true;
    return false;
  }

  /** The names of the slots that are (or are about to be) master. */
  masterSlots(): string[] {
    return this.fencedMasters().map((m) => m.slot);
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
          // a link where the sync logs or the quarantine should be: the slot is refused, not started without them
          .catch(async (err: unknown) => Promise.reject(err instanceof UnsafePathError ? (await s.refuse(err), err) : err))
          .then(() => s.converge(slot, !d.stopped, d.startGeneration, requestOf(d, 'recoverListen')?.id ?? ''))
          .finally(() => this.unlogged.demotionDone(s.name))
          .then(() => this.watch(s))
          .then(() => this.requests.drive(s, d)),
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
          this.requests.forget(name);
          this.options.logs?.untrack(name);
          await this.unlogged.removed(name);
        }),
      );
    }
    const results = await Promise.allSettled(work);
    this.firstApplied = true;
    for (const r of results) if (r.status === 'rejected') this.options.log.error({ err: (r.reason as Error).message }, 'converging a slot failed');
    await this.options.publishMasters(this.fencedMasters());
    void this.reconcileNow().catch((err: Error) => this.options.log.error({ err: err.message }, 'address reconciliation failed'));
  }

  /**
   * A slot that is to be a replica keeps no sync log: what an old master left (its changes the replica may lack) is
   * moved into quarantine before the slot can start in any sync role. A master still running is stopped first.
   */
  private async quarantineIfReplica(s: SlotSupervisor, next: AppliedSlot): Promise<void> {
    if (next.role !== 'REPLICA') return;
    // a try at logging a marked master's changes ends first, and the log is read up to now (a late failed write)
    if (s.desired?.role === 'MASTER' || this.unlogged.marked(s.name)) await this.unlogged.beginDemotion(s.name);
    if (s.desired?.role === 'MASTER' && (s.lifecycle === 'serving' || s.lifecycle === 'starting')) await s.stop(`demoted to replica at epoch ${next.epoch}`);
    const layout = slotLayout(next.dataPath, next.metaPath);
    const folder = await quarantineLeftovers(layout, next.epoch);
    if (folder) withContext(this.options.log, { slot: s.name, store: next.store, epoch: next.epoch }).warn({ folder }, 'leftover sync logs of a former master moved into quarantine: they name changes the new master may lack (slotctl store recover)');
    // changes it made that no sync log names: every mailbox joins the quarantine (refused start if they cannot be listed)
    await this.unlogged.quarantine(s, layout, next.epoch);
    if (folder || !this.quarantines.has(s.name)) this.quarantines.set(s.name, await readQuarantine(layout));
  }

  /**
   * Level-triggered addresses and processes: every `everyMs` (and after each desired state) the interface's
   * addresses are listed once and each slot repairs its own drift (see SlotSupervisor.reconcile). This is the
   * agent's supervision loop: `onPass` follows each pass that came round (failed or not; the systemd watchdog's
   * keep-alive), so a pass that never ends — or a blocked event loop — stops it.
   */
  startReconciling(everyMs: number, onPass: () => void = () => undefined): void {
    const tick = async () => {
      await this.reconcileNow().catch((err: Error) => this.options.log.error({ err: err.message }, 'address reconciliation failed; trying again'));
      // not awaited: a full partition must not hold up the supervision loop (one attempt per slot at a time)
      void this.unlogged.pass(this.supervisors.values());
      onPass();
      this.reconcileTimer = setTimeout(() => void tick(), everyMs);
      this.reconcileTimer.unref();
    };
    this.reconcileTimer = setTimeout(() => void tick(), everyMs);
    this.reconcileTimer.unref();
  }

  /** One pass now; asked for while one runs, one more pass follows it (bursts of address events coalesce). */
  readonly reconcileNow = coalesced(async () => {
    const bound = await this.options.runtime.vip.list();
    await Promise.all([...this.supervisors.values()].map((s) => s.reconcile(bound)));
  });

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

  /** A partner's recovery asks: the GUIDs of some mailboxes of one of this machine's slots. */
  async guidsOf(slot: string, names: readonly string[]): Promise<MailboxGuidList[]> {
    const s = this.supervisors.get(slot);
    if (!s?.layout) throw new Error(`slot ${slot} is not on this machine`);
    // with what it holds expunged: a recovery's IMAP copy leaves out what this (new) master's users deleted
    return mailboxGuids(s.layout.imapdConf, names.slice(0, 10_000), undefined, true);
  }

  /** A partner's recovery asks this (new master) slot to log a user-level sync of some users. */
  async userSyncOn(slot: string, users: readonly string[]): Promise<void> {
    const s = this.supervisors.get(slot);
    if (!s?.layout || s.desired?.role !== 'MASTER') throw new Error(`slot ${slot} is not a master on this machine`);
    await logUserSync(s.layout.imapdConf, users.slice(0, 10_000));
  }

  /**
   * Every slot as its report shows it, from memory only (no log tail, no measurement): what /metrics reads at each
   * scrape, so that the numbers there are the coordinator's and a scrape costs the event loop nothing.
   */
  observe(): SlotObservation[] {
    return [...this.supervisors.values()].map((s) => this.observed(s));
  }

  private observed(s: SlotSupervisor): SlotObservation {
    return {
      slot: s.name,
      store: s.desired?.store ?? '',
      role: s.desired?.role ?? 'ROLE_UNSPECIFIED',
      running: s.pid !== undefined,
      state: STATE[s.reported.lifecycle],
      backlog: this.watchers.get(s.name)?.backlog,
      partitions: this.partitions.get(s.name) ?? [],
    };
  }

  async reports(): Promise<SlotReport[]> {
    const out: SlotReport[] = [];
    for (const s of this.supervisors.values()) {
      const d = s.desired;
      const shown = s.reported;
      const seen = this.observed(s);
      out.push({
        slot: s.name,
        state: seen.state,
        role: d?.role ?? 'ROLE_UNSPECIFIED',
        epochApplied: d?.epoch ?? 0,
        backlog: this.unlogged.backlogOf(s.name, seen.backlog),
        lastError: s.lastError,
        recentLog: (await this.options.logs?.tail(s.name, this.options.recentLogLines)) ?? [],
        pid: s.pid ?? 0,
        stateReason: shown.reason,
        crashesInWindow: s.crashesInWindow,
        syncConfirmedEpoch: (this.requests.last(s.name, 'confirm') as { epoch?: number } | undefined)?.epoch ?? 0,
        // a replica always says what its quarantine holds (empty too): the coordinator learns a returned old master is clean
        quarantine: d?.role === 'REPLICA' ? this.unlogged.quarantineOf(s.name, this.quarantines.get(s.name)) : undefined,
        recoverListening: s.recoverListening,
        results: this.requests.report(s.name),
        partitions: [...seen.partitions],
      });
    }
    return out;
  }

  async stopAll(why: string): Promise<void> {
    await Promise.all([...this.supervisors.values()].map((s) => s.stop(why)));
  }

  /** Every slot stopped so that nothing acknowledged is lost: masters, flushed to their replicas, then replicas (ordered-stop.ts). */
  async stopInOrder(why: string, o: Pick<OrderedStopOptions, 'mayReplay' | 'progress'>): Promise<void> {
    await stopInOrder([...this.supervisors.values()], { ...o, why, syncPort: this.options.runtime.ports.sync, log: this.options.log, logUnlogged: (s) => this.unlogged.logFullSync(s) });
  }

  /** Agent exit without stopping Cyrus: stop watching, leave every cyrmaster running. */
  async detachAll(): Promise<void> {
    this.options.logs?.stop();
    if (this.options.logs) this.options.unlogged.setLogPositions(this.options.logs.positions());
    await this.options.unlogged.flush().catch((err: Error) => this.options.log.error({ err: err.message }, 'unlogged.json not written at exit'));
    clearTimeout(this.logReportTimer);
    clearTimeout(this.reconcileTimer);
    for (const s of this.supervisors.values()) s.detach();
    await Promise.all([...this.watchers.values()].map((w) => w.stop()));
  }
}
