// Runs persisted operations (switchover, drain) to their end: one synchronous evaluation over a fresh snapshot of
// the database each time something may have changed (an agent report, a session, an admin call, a 200 ms tick for
// timeouts). A rule that fires is recorded (operation row + event, one transaction) before its action runs, and
// every action only writes desired state, so a coordinator restarted at any point resumes from the recorded step.
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError, withContext, type Logger } from '@slotctl/shared';
import { OperationConflict, type OperationRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { DRAIN_RULES, firstDrainRule, storesToLaunch, type DrainAction, type DrainParams, type DrainView } from './drain-rules.js';
import { SWITCHOVER_RULES, firstRule, rolledBackState, switchoverPlan, switchoverProblems, type SwitchoverAction, type SwitchoverParams, type SwitchoverView } from './switchover-rules.js';
import { FAILOVER_DEFAULTS, FailoverRunner } from './failover-runner.js';
import { RecoveryRunner } from './recovery-runner.js';
import { ReReplicationRunner } from './rereplicate-runner.js';
import { CleanupScheduler } from '../cleanup/runner.js';
import { Coalescer } from './coalesce.js';
import { planRebalance, type RebalancePlan } from '@slotctl/planner';
import { clusterFromRows } from '../placement/from-rows.js';

export const SWITCHOVER_DEFAULTS = { timeoutMs: 120_000, settleTimeoutMs: 60_000, maxBacklogMailboxes: 1000 };
export const DRAIN_DEFAULTS = { parallel: 2 };

export interface OrchestratorDeps {
  storage: Storage;
  /** Re-sends desired state to these machines. */
  push: (machines: Iterable<string>) => void;
  connected: () => ReadonlySet<string>;
  log: Logger;
  /**
   * Test hook (SLOTCTL_TEST_CRASH_AT=STEP[:before|:after]): the coordinator kills itself with SIGKILL right after
   * recording STEP (before its action) or after the action, to prove that every step resumes.
   */
  crashAt?: string | undefined;
  /** After a (re)start, how long preflights wait for agents to reconnect before refusing (the lease). */
  graceMs: number;
  /** Switchovers past their preflight at once, cluster-wide (a drain's `--parallel` bounds its own). */
  maxSwitchovers: number;
  /** More machines with masters down at once than this: no automatic failover (default 1). */
  maxAutomaticFailover?: number | undefined;
}

export interface SwitchoverOptions {
  timeoutMs?: number | undefined;
  maxBacklogMailboxes?: number | undefined;
  parent?: string | undefined;
  reason?: string | undefined;
}

export class Orchestrator {
  private timer: NodeJS.Timeout | undefined;
  /** Until then, agents may still be reconnecting to this (re)started coordinator: preflights wait, not refuse. */
  private graceUntil = 0;
  private evaluating = false;
  private again = false;
  /** Agents' reports and sessions wake it through here: at most one evaluation per 50 ms however many arrive. */
  private readonly soon = new Coalescer(() => this.wake(), 50);

  readonly failover: FailoverRunner;
  private readonly recovery: RecoveryRunner;
  private readonly rereplication: ReReplicationRunner;
  readonly cleanup: CleanupScheduler;

  constructor(private readonly deps: OrchestratorDeps) {
    this.failover = new FailoverRunner({
      storage: deps.storage,
      push: deps.push,
      connected: deps.connected,
      log: deps.log,
      maxAutomaticMachines: deps.maxAutomaticFailover ?? FAILOVER_DEFAULTS.maxAutomaticMachines,
      record: (op, fired, crashName, act) => this.record(op, fired, crashName, act),
      cancelQuietly: (op) => this.cancelQuietly(op),
    });
    this.recovery = new RecoveryRunner({ storage: deps.storage, push: deps.push, connected: deps.connected, log: deps.log, record: (op, fired, crashName, act) => this.record(op, fired, crashName, act) });
    this.cleanup = new CleanupScheduler({ storage: deps.storage, push: deps.push, connected: deps.connected, log: deps.log });
    this.rereplication = new ReReplicationRunner({ storage: deps.storage, push: deps.push, connected: deps.connected, log: deps.log, record: (op, fired, crashName, act) => this.record(op, fired, crashName, act) });
  }

  /** Resumes every running operation from its recorded step and re-evaluates every 200 ms (timeouts). */
  start(): void {
    this.graceUntil = Date.now() + this.deps.graceMs;
    // A step is recorded before its action runs: the coordinator may have died in between, so each running
    // operation's current step has its action run again (every action is idempotent).
    for (const op of this.deps.storage.operations.running()) {
      this.deps.log.info({ op: op.id, kind: op.kind, store: op.store, machine: op.machine, step: op.step }, 'resuming operation: running the action of its recorded step again');
      if (op.kind === 'switchover') {
        const v = this.switchoverView(op);
        const action = SWITCHOVER_RULES.find((r) => r.to === op.step)?.action;
        if (v && action) this.switchoverAction(action, v);
      } else if (op.kind === 'failover') {
        this.failover.resume(op);
      } else if (op.kind === 'recover') {
        this.recovery.resume(op);
      } else if (op.kind === 'rereplicate') {
        this.rereplication.resume(op);
      } else {
        const action = DRAIN_RULES.find((r) => r.to === op.step && r.from !== r.to)?.action;
        if (action) this.drainAction(action, op, this.drainView(op));
      }
    }
    this.timer = setInterval(() => this.wake(), 200);
    this.timer.unref();
    this.wake();
  }

  stop(): void {
    clearInterval(this.timer);
    this.soon.cancel();
  }

  /** An agent reported or a session started or ended: evaluate soon (bursts folded into one evaluation). */
  wakeSoon(): void {
    this.soon.request();
  }

  /** Something changed: evaluate every running operation (re-entrant calls are folded into one more pass). */
  wake(): void {
    if (this.evaluating) {
      this.again = true;
      return;
    }
    this.evaluating = true;
    try {
      do {
        this.again = false;
        // after a (re)start, agents get the lease to reconnect before anything is failed over
        if (Date.now() >= this.graceUntil) this.failover.check(this.deps.storage.operations.running());
        this.recovery.check(this.deps.storage.operations.running());
        for (const op of this.deps.storage.operations.running()) this.evaluate(op);
        this.cleanup.check();
      } while (this.again);
    } catch (err) {
      this.deps.log.error({ err: (err as Error).stack }, 'operation evaluation failed (a bug)');
    } finally {
      this.evaluating = false;
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Requests

  /** The switchover a request would start: its parameters, preflight problems and plan, without touching anything. */
  previewSwitchover(storeName: string, options: SwitchoverOptions = {}): { params: SwitchoverParams; problems: string[]; plan: string[] } {
    const { storage } = this.deps;
    const store = storage.stores.get(storeName);
    if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
    const from = storage.slots.get(store.masterSlot)!;
    const to = storage.slots.get(store.replicaSlot)!;
    const params: SwitchoverParams = {
      from: from.name,
      to: to.name,
      fromMachine: from.machine,
      toMachine: to.machine,
      epoch: store.epoch,
      timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs,
      settleTimeoutMs: SWITCHOVER_DEFAULTS.settleTimeoutMs,
      maxBacklogMailboxes: options.maxBacklogMailboxes || SWITCHOVER_DEFAULTS.maxBacklogMailboxes,
    };
    const view = { params, store, from, to, fromMachine: storage.machines.get(from.machine)!, toMachine: storage.machines.get(to.machine)!, connected: this.deps.connected(), inGrace: false, slotsFree: 1 };
    return { params, problems: switchoverProblems(view), plan: switchoverPlan(params, store.name, store.serviceIp) };
  }

  /** Records a switchover and runs its preflight at once; the returned row says whether it was refused. */
  startSwitchover(storeName: string, options: SwitchoverOptions = {}): OperationRow {
    const { params } = this.previewSwitchover(storeName, options);
    const id = `sw-${randomUUID().slice(0, 8)}`;
    try {
      this.deps.storage.operations.create({
        id,
        kind: 'switchover',
        store: storeName,
        parent: options.parent,
        step: 'preflight',
        params: { ...params },
        epoch: params.epoch,
        reason: options.reason ?? `switchover of ${storeName}: ${params.from} (${params.fromMachine}) -> ${params.to} (${params.toMachine}) requested`,
      });
    } catch (err) {
      if (err instanceof OperationConflict) {
        throw new ConflictError(`store ${storeName} is busy: ${err.message}`, { hint: `wait for it (slotctl operations show ${err.running.id} --wait) or cancel it (slotctl operations cancel ${err.running.id})` });
      }
      throw err;
    }
    this.wake();
    return this.deps.storage.operations.get(id)!;
  }

  /** The stores a drain of `machine` would move, as `store: from -> to` lines. */
  previewDrain(machine: string): { stores: string[]; plan: string[] } {
    const { storage } = this.deps;
    if (!storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
    const slots = new Map(storage.slots.list().map((s) => [s.name, s]));
    const stores = storage.stores.list().filter((s) => slots.get(s.masterSlot)?.machine === machine);
    return {
      stores: stores.map((s) => s.name),
      plan: stores.map((s) => `${s.name}: ${s.masterSlot} (${machine}) -> ${s.replicaSlot} (${slots.get(s.replicaSlot)?.machine ?? '?'})`),
    };
  }

  startDrain(machine: string, options: { parallel?: number | undefined; timeoutMs?: number | undefined }): OperationRow {
    const { stores } = this.previewDrain(machine);
    const parallel = options.parallel || DRAIN_DEFAULTS.parallel;
    if (parallel < 1 || parallel > 64) throw new ValidationError(`--parallel ${parallel} is out of range`, { hint: 'use 1 to 64' });
    const params: DrainParams = { machine, parallel, timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs, stores };
    const id = `dr-${randomUUID().slice(0, 8)}`;
    try {
      this.deps.storage.operations.create({ id, kind: 'drain', machine, step: 'preflight', params: { ...params }, reason: `drain of ${machine} requested: ${stores.length} store(s) to move, ${parallel} at a time` });
    } catch (err) {
      if (err instanceof OperationConflict) {
        throw new ConflictError(`machine ${machine} is already being drained: ${err.message}`, { hint: `follow it with slotctl operations show ${err.running.id} --wait` });
      }
      throw err;
    }
    this.wake();
    return this.deps.storage.operations.get(id)!;
  }

  undrain(machine: string): void {
    const { storage } = this.deps;
    if (!storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
    const drain = storage.operations.running().find((o) => o.kind === 'drain' && o.machine === machine);
    if (drain) throw new ConflictError(`machine ${machine} is being drained by operation ${drain.id}`, { hint: `cancel it first: slotctl operations cancel ${drain.id}` });
    storage.machines.setDrained(machine, false, 'operator undrained the machine: masters may be placed on it again');
  }

  /** `slotctl machine failover M [--force] [--dry-run]`: fail over a down machine's stores now. */
  failoverMachine(machine: string, options: { force: boolean; dryRun: boolean }): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    const { storage } = this.deps;
    const stores = this.failover.storesOf(machine);
    const row = storage.machines.get(machine)!;
    const problems: string[] = [];
    if (row.state !== 'down') problems.push(`machine ${machine} is ${row.state}, not down: its masters serve (to move them: slotctl machine drain ${machine})`);
    const slots = new Map(storage.slots.list().map((s) => [s.name, s.machine]));
    const downWithMasters = [...new Set(storage.stores.list().map((s) => slots.get(s.masterSlot)!).filter((m) => storage.machines.get(m)?.state === 'down'))];
    const limit = this.deps.maxAutomaticFailover ?? FAILOVER_DEFAULTS.maxAutomaticMachines;
    if (!options.force && downWithMasters.length > limit) {
      problems.push(`${downWithMasters.length} machines with masters are down at once (${downWithMasters.join(', ')}), more than automatic failover allows (${limit}): if you are sure ${machine} is gone and not cut off, add --force`);
    }
    const plan = stores.flatMap((s) => this.failover.paramsFor(s, options.force).plan.slice(1, 2).map((line) => `${s}: ${line}`));
    if (stores.length === 0) problems.push(`machine ${machine} holds no master: nothing to fail over`);
    if (options.dryRun || problems.length) return { plan, problems, operations: [] };
    const operations: OperationRow[] = [];
    for (const store of stores) {
      try {
        operations.push(this.failover.start(store, options.force));
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        problems.push(err.message);
      }
    }
    this.wake();
    return { plan, problems, operations: operations.map((op) => storage.operations.get(op.id)!) };
  }

  /** `slotctl machine retire M`: a down machine gone for good; its stores get new replicas on peers. */
  retire(machine: string, dryRun: boolean): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    const out = this.rereplication.retire(machine, dryRun);
    this.wake();
    return { ...out, operations: out.operations.map((op) => this.deps.storage.operations.get(op.id)!) };
  }

  /** The planner's rebalance over the database as it is now (busy stores and seeding replicas left alone). */
  previewRebalance(): RebalancePlan {
    const { storage } = this.deps;
    const slots = storage.slots.list();
    const busy = new Set([...storage.operations.busyStores(), ...slots.filter((s) => s.seeding || s.recoveryHold || s.adminStopped).map((s) => s.store)]);
    return planRebalance(clusterFromRows({ machines: storage.machines.list(), stores: storage.stores.list(), slots }), busy);
  }

  /** `slotctl plan rebalance --apply`: the planner's switchovers as one resumable operation (a drain's table). */
  startRebalance(options: { parallel?: number | undefined; timeoutMs?: number | undefined }): { plan: RebalancePlan; operation: OperationRow | undefined } {
    const plan = this.previewRebalance();
    if (plan.moves.length === 0) return { plan, operation: undefined };
    const parallel = options.parallel || DRAIN_DEFAULTS.parallel;
    if (parallel < 1 || parallel > 64) throw new ValidationError(`--parallel ${parallel} is out of range`, { hint: 'use 1 to 64' });
    const running = this.deps.storage.operations.running().find((o) => o.kind === 'rebalance');
    if (running) throw new ConflictError(`a rebalance is already running: ${running.id}`, { hint: `follow it with slotctl operations show ${running.id} --wait` });
    const params: DrainParams = {
      machine: '',
      parallel,
      timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs,
      stores: plan.moves.map((m) => m.store),
      from: Object.fromEntries(plan.moves.map((m) => [m.store, m.from])),
    };
    const id = `rb-${randomUUID().slice(0, 8)}`;
    this.deps.storage.operations.create({ id, kind: 'rebalance', step: 'preflight', params: { ...params, moves: plan.moves }, reason: `rebalance requested: ${plan.sentence}` });
    this.wake();
    return { plan, operation: this.deps.storage.operations.get(id)! };
  }

  /** `slotctl store recover` / `machine recover`. */
  recover(input: { store?: string | undefined; machine?: string | undefined; dryRun: boolean }): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    const out = this.recovery.request(input);
    this.wake();
    return { ...out, operations: out.operations.map((op) => this.deps.storage.operations.get(op.id)!) };
  }

  cancel(id: string): OperationRow {
    const { storage } = this.deps;
    const op = storage.operations.get(id);
    if (!op) throw new NotFoundError(`operation "${id}" does not exist`, { hint: 'list operations with `slotctl operations list --all`' });
    if (op.state !== 'running') throw new ConflictError(`operation ${id} already ended (${op.state})`);
    if (op.kind === 'failover') throw new ConflictError(`operation ${id} is a failover: the old master's machine is down, there is nothing to roll back to`, { hint: `wait for it to end (slotctl operations show ${id} --wait)` });
    if (op.kind === 'recover') throw new ConflictError(`operation ${id} is a recovery: it only adds mail to the new master and ends at its timeout`, { hint: `wait for it to end (slotctl operations show ${id} --wait)` });
    if (op.kind === 'rereplicate') throw new ConflictError(`operation ${id} is a re-replication: it only adds a replica and ends by itself or at its timeout`, { hint: `wait for it to end (slotctl operations show ${id} --wait); run slotctl machine retire again to resume a failed one` });
    if (op.kind === 'switchover' && !['preflight', 'stop-master', 'replay', 'verify'].includes(op.step)) {
      throw new ConflictError(`operation ${id} is past the flip (at step ${op.step}): it completes, it cannot be rolled back`, {
        hint: `to move the master back, wait for it to end and run slotctl store switchover ${op.store}`,
      });
    }
    storage.operations.requestCancel(id, 'operator asked to cancel: stop at the next safe point and roll back');
    this.wake();
    return storage.operations.get(id)!;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Evaluation

  private evaluate(op: OperationRow): void {
    for (let i = 0; i < 20 && op.state === 'running'; i++) {
      const fired =
        op.kind === 'switchover'
          ? this.stepSwitchover(op)
          : op.kind === 'failover'
            ? this.failover.step(op)
            : op.kind === 'recover'
              ? this.recovery.step(op)
              : op.kind === 'rereplicate'
                ? this.rereplication.step(op)
                : this.stepDrain(op);
      if (!fired) return;
      op = this.deps.storage.operations.get(op.id)!;
    }
  }

  private crashHook(step: string, when: 'before' | 'after'): void {
    const at = this.deps.crashAt;
    if (!at) return;
    const [s, w = 'after'] = at.split(':');
    if (s === step && w === when) {
      this.deps.log.warn({ step, when }, 'test hook: coordinator kills itself (SLOTCTL_TEST_CRASH_AT)');
      process.kill(process.pid, 'SIGKILL');
    }
  }

  /** Records a fired rule (operation row + event, one transaction), then runs its action between the crash hooks. */
  private record(op: OperationRow, fired: { to: string; state: OperationRow['state']; rule: string; reason: string; error?: string; epoch: number }, crashName: string, act: () => void): boolean {
    if (!this.deps.storage.operations.advance(op, fired)) return false;
    withContext(this.deps.log, { op: op.id, store: op.store ?? undefined, machine: op.machine ?? undefined, epoch: fired.epoch }).info({ rule: fired.rule, state: fired.state }, fired.reason);
    this.crashHook(crashName, 'before');
    act();
    this.crashHook(crashName, 'after');
    return true;
  }

  private switchoverView(op: OperationRow): SwitchoverView | undefined {
    const { storage } = this.deps;
    const params = op.params as unknown as SwitchoverParams;
    if (!op.store || ![params.from, params.to, params.fromMachine, params.toMachine].every((x) => typeof x === 'string')) return undefined;
    const store = storage.stores.get(op.store);
    const from = storage.slots.get(params.from);
    const to = storage.slots.get(params.to);
    const fromMachine = storage.machines.get(params.fromMachine);
    const toMachine = storage.machines.get(params.toMachine);
    if (!store || !from || !to || !fromMachine || !toMachine) return undefined;
    const now = Date.now();
    // only a preflight needs the count (the --max-switchovers bound): no query for the other steps
    const active = op.step === 'preflight' ? storage.operations.running().filter((o) => o.kind === 'switchover' && o.step !== 'preflight').length : 0;
    return { now, op, params, store, from, to, fromMachine, toMachine, connected: this.deps.connected(), inGrace: now < this.graceUntil, slotsFree: this.deps.maxSwitchovers - active };
  }

  private stepSwitchover(op: OperationRow): boolean {
    const { storage } = this.deps;
    const v = this.switchoverView(op);
    if (!v) {
      storage.operations.advance(op, { to: 'done', state: 'failed', rule: `${op.step} -> done`, reason: 'store or slot removed from the cluster meanwhile', error: 'the store or one of its slots was removed from the cluster' });
      return true;
    }
    const fired = firstRule(v);
    if (!fired) return false;
    const { rule, detail } = fired;
    const state = rule.to === 'rolled-back' ? rolledBackState(op) : (rule.state ?? 'running');
    const epoch = rule.action === 'flip' ? v.params.epoch : v.store.epoch;
    const advanced = storage.operations.advance(op, {
      to: rule.to,
      state,
      rule: `${rule.from} -> ${rule.to}`,
      reason: `${rule.reason}: ${detail}`,
      epoch,
      ...(rule.failure ? { error: detail } : {}),
    });
    if (!advanced) return false;
    const log = withContext(this.deps.log, { op: op.id, store: op.store ?? undefined, epoch });
    log.info({ rule: `${rule.from} -> ${rule.to}`, action: rule.action, state }, `${rule.reason}: ${detail}`);
    this.crashHook(rule.to, 'before');
    this.switchoverAction(rule.action, v);
    this.crashHook(rule.to, 'after');
    return true;
  }

  private switchoverAction(action: SwitchoverAction, v: SwitchoverView): void {
    const { storage } = this.deps;
    const p = v.params;
    const both = [p.fromMachine, p.toMachine];
    switch (action) {
      case 'hold-old-master':
        storage.slots.setOpHold(p.from, v.op.id);
        this.deps.push([p.fromMachine]);
        return;
      case 'request-replay':
        storage.requests.replay(p.from, v.op.id, `switchover ${v.op.id}: replay leftover sync logs to ${p.to}`);
        this.deps.push([p.fromMachine]);
        return;
      case 'request-check': {
        const named = storage.slots.get(p.from)?.replayResult?.mailboxes?.map((m) => m.name) ?? [];
        if (named.length === 0) return;
        storage.requests.check(p.to, v.op.id, named);
        this.deps.push([p.toMachine]);
        return;
      }
      case 'flip':
        try {
          storage.transaction(() => {
            storage.stores.setMaster(v.store.name, p.to, p.epoch, `switchover ${v.op.id}: ${p.from} -> ${p.to}`, v.op.id);
            storage.slots.setOpHold(p.from, '');
            storage.requests.check(p.to, '', []);
          });
        } catch (err) {
          this.deps.log.warn({ op: v.op.id, store: v.store.name, err: (err as Error).message }, 'flip not done');
        }
        this.deps.push(both);
        return;
      case 'release-hold':
        storage.slots.setOpHold(p.from, '');
        storage.requests.check(p.to, '', []);
        this.deps.push(both);
        return;
      case 'finish':
        if (storage.slots.get(p.from)?.opHold === v.op.id) storage.slots.setOpHold(p.from, '');
        storage.requests.check(p.to, '', []);
        this.deps.push(both);
        return;
      default:
        return;
    }
  }

  private drainView(op: OperationRow): DrainView {
    const { storage } = this.deps;
    const params = op.params as unknown as DrainParams;
    return {
      now: Date.now(),
      op,
      params,
      machineExists: storage.machines.get(params.machine) !== undefined,
      stores: new Map(storage.stores.list().map((s) => [s.name, s])),
      slots: new Map(storage.slots.list().map((s) => [s.name, s])),
      children: storage.operations.children(op.id),
    };
  }

  private stepDrain(op: OperationRow): boolean {
    const { storage } = this.deps;
    const v = this.drainView(op);
    const fired = firstDrainRule(v);
    if (!fired) return false;
    const { rule, detail } = fired;
    if (!storage.operations.advance(op, { to: rule.to, state: rule.state ?? 'running', rule: `${rule.from} -> ${rule.to}`, reason: `${rule.reason}: ${detail}`, ...(rule.state && rule.state !== 'succeeded' ? { error: detail } : {}) })) return false;
    withContext(this.deps.log, { op: op.id, machine: v.params.machine || undefined }).info({ rule: `${rule.from} -> ${rule.to}`, action: rule.action }, `${rule.reason}: ${detail}`);
    this.crashHook(`drain-${rule.to}`, 'before');
    this.drainAction(rule.action, op, v);
    this.crashHook(`drain-${rule.to}`, 'after');
    return true;
  }

  private drainAction(action: DrainAction, op: OperationRow, v: DrainView): void {
    switch (action) {
      case 'mark-drained':
        this.deps.storage.machines.setDrained(v.params.machine, true, `drain ${op.id}: no master may be placed on ${v.params.machine} until slotctl machine undrain`, op.id);
        return;
      case 'launch':
        for (const store of storesToLaunch(v)) this.launchChild(op, v, store);
        return;
      case 'cancel-children':
        for (const child of v.children) if (child.state === 'running') this.cancelQuietly(child);
        return;
      default:
        return;
    }
  }

  private launchChild(op: OperationRow, v: DrainView, store: string): void {
    try {
      const why = op.kind === 'rebalance' ? `rebalance ${op.id}: switchover of ${store} off ${v.params.from?.[store] ?? '?'}` : `drain ${op.id} of ${v.params.machine}: switchover of ${store}`;
      this.startSwitchover(store, { timeoutMs: v.params.timeoutMs, parent: op.id, reason: why });
    } catch (err) {
      // the store is busy with another operation (or vanished): the drain reports it and goes on with the others
      const current = this.deps.storage.operations.get(op.id)!;
      this.deps.storage.operations.mergeResult(op.id, { conflicts: { ...((current.result.conflicts ?? {}) as Record<string, string>), [store]: (err as Error).message } });
    }
  }

  private cancelQuietly(child: OperationRow): void {
    try {
      this.cancel(child.id);
    } catch {
      // past the flip: it completes
    }
  }
}
