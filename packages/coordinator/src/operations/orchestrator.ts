// Runs persisted operations to their end: one synchronous evaluation over a fresh snapshot of the database each time
// something may have changed (an agent report, a session, an admin call, a 200 ms tick for timeouts). The level-
// triggered watches (watch/) start failovers and close what returning old masters need not recover; the runner
// (framework/runner.ts) evaluates every running operation by its kind's table (kinds/). This file holds the request
// API the admin service calls: previews and starts of each kind.
import { ConflictError, NotFoundError, type Logger } from '@slotctl/shared';
import type { OperationRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { CleanupScheduler } from '../cleanup/runner.js';
import { planEvacuate, planFanOut, planFillMachine, planRebalance, type AddMachinePlan, type EvacuatePlan, type FanOutPlan, type PlanCluster, type RebalancePlan } from '@slotctl/planner';
import { clusterFromRows } from '../placement/from-rows.js';
import { Coalescer } from './coalesce.js';
import type { KindContext } from './framework/kind.js';
import { OperationRunner } from './framework/runner.js';
import { createDrain, createRebalance, previewDrain } from './kinds/drain.js';
import { createRelocation, type RelocateKindName, type RelocateTask } from './kinds/relocate.js';
import { FAILOVER_DEFAULTS, createFailover, previewFailover, storesMasteredOn } from './kinds/failover.js';
import { KIND_BY_NAME } from './kinds/index.js';
import { requestRecovery } from './kinds/recovery.js';
import { retireMachine } from './kinds/rereplicate.js';
import { DEFAULT_SEED_LIMITS, type SeedLimits } from './seed-limits.js';
import { moveRoomChecker, previewMoveReplica, startMoveReplica, type MoveReplicaRequest } from './kinds/move-replica-plan.js';
import { createSwitchover, previewSwitchover, type SwitchoverOptions, type SwitchoverParams } from './kinds/switchover.js';
import { FailoverWatch } from './watch/failover.js';
import { RecoveryWatch } from './watch/recovery.js';

export type { SwitchoverOptions } from './kinds/switchover.js';

/** A plan's moves or switchovers as one phase of a relocation's tasks. */
const tasksOf = (moves: readonly { store: string; from: string; to: string; reason: string }[], action: RelocateTask['action'], phase: number): RelocateTask[] =>
  moves.map((m) => ({ store: m.store, action, from: m.from, to: m.to, phase, reason: m.reason }));

/** A relocation's knobs: children at once, and each switchover's timeout. */
export interface RelocateOptions {
  parallel?: number | undefined;
  timeoutMs?: number | undefined;
}

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
  crashAt?: () => string | undefined;
  /** After a (re)start, how long preflights wait for agents to reconnect before refusing (the lease). */
  graceMs: number;
  /** Switchovers past their preflight at once, cluster-wide (a drain's `--parallel` bounds its own). */
  maxSwitchovers: number;
  /** Seeds at once, cluster-wide and per machine (default 2 and 1). */
  seedLimits?: SeedLimits | undefined;
  /** More machines with masters down at once than this: no automatic failover (default 1). */
  maxAutomaticFailover?: number | undefined;
}

export class Orchestrator {
  private timer: NodeJS.Timeout | undefined;
  /** Until then, agents may still be reconnecting to this (re)started coordinator: preflights wait, not refuse. */
  private graceUntil = 0;
  private evaluating = false;
  private again = false;
  /** Agents' reports and sessions wake it through here: at most one evaluation per 50 ms however many arrive. */
  private readonly soon = new Coalescer(() => this.wake(), 50);

  private readonly ctx: KindContext;
  private readonly runner: OperationRunner;
  private readonly failoverWatch: FailoverWatch;
  private readonly recoveryWatch: RecoveryWatch;
  readonly cleanup: CleanupScheduler;

  private stopped = false;

  constructor(private readonly deps: OrchestratorDeps) {
    this.ctx = {
      storage: deps.storage,
      push: deps.push,
      connected: deps.connected,
      log: deps.log,
      graceUntil: () => this.graceUntil,
      maxSwitchovers: deps.maxSwitchovers,
      seedLimits: deps.seedLimits ?? DEFAULT_SEED_LIMITS,
      startSwitchover: (store, options) => {
        this.startSwitchover(store, options);
      },
      cancelQuietly: (op) => this.cancelQuietly(op),
    };
    this.runner = new OperationRunner(this.ctx, { kinds: KIND_BY_NAME, crashAt: deps.crashAt, wake: () => this.wake() });
    this.failoverWatch = new FailoverWatch(this.ctx, this.maxAutomaticFailover);
    this.recoveryWatch = new RecoveryWatch(this.ctx);
    this.cleanup = new CleanupScheduler({ storage: deps.storage, push: deps.push, connected: deps.connected, log: deps.log });
  }

  private get maxAutomaticFailover(): number {
    return this.deps.maxAutomaticFailover ?? FAILOVER_DEFAULTS.maxAutomaticMachines;
  }

  /** Resumes every running operation from its recorded step and re-evaluates every 200 ms (timeouts). */
  start(): void {
    this.graceUntil = Date.now() + this.deps.graceMs;
    // A step is recorded before its action runs: the coordinator may have died in between, so each running
    // operation's current step has its action run again (every action is idempotent).
    for (const op of this.deps.storage.operations.running()) {
      this.deps.log.info({ op: op.id, kind: op.kind, store: op.store, machine: op.machine, step: op.step }, 'resuming operation: running the action of its recorded step again');
      this.runner.resume(op);
    }
    this.timer = setInterval(() => this.wake(), 200);
    this.timer.unref();
    this.wake();
  }

  /** No evaluation after this, whatever wakes it (a deposed leader's database is closed next). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.soon.cancel();
  }

  /** An agent reported or a session started or ended: evaluate soon (bursts folded into one evaluation). */
  wakeSoon(): void {
    if (!this.stopped) this.soon.request();
  }

  /** Something changed: evaluate every running operation (re-entrant calls are folded into one more pass). */
  wake(): void {
    if (this.stopped) return;
    if (this.evaluating) {
      this.again = true;
      return;
    }
    this.evaluating = true;
    // what the evaluation does is the cluster's own doing, also when an Admin call woke it: its events have no actor
    // (the call's operation is found by its id: events --who follows it)
    try {
      this.deps.storage.events.as(undefined, () => this.evaluateAll());
    } catch (err) {
      this.deps.log.error({ err: (err as Error).stack }, 'operation evaluation failed (a bug)');
    } finally {
      this.evaluating = false;
    }
  }

  private evaluateAll(): void {
    do {
      this.again = false;
      // after a (re)start, agents get the lease to reconnect before anything is failed over
      if (Date.now() >= this.graceUntil) this.failoverWatch.check(this.deps.storage.operations.running());
      this.recoveryWatch.check(this.deps.storage.operations.running());
      for (const op of this.deps.storage.operations.running()) this.runner.evaluate(op);
      this.cleanup.check();
    } while (this.again);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Requests

  /** The switchover a request would start: its parameters, preflight problems and plan, without touching anything. */
  previewSwitchover(storeName: string, options: SwitchoverOptions = {}): { params: SwitchoverParams; problems: string[]; plan: string[] } {
    return previewSwitchover(this.ctx, storeName, options);
  }

  /** Records a switchover and runs its preflight at once; the returned row says whether it was refused. */
  startSwitchover(storeName: string, options: SwitchoverOptions = {}): OperationRow {
    const id = createSwitchover(this.ctx, storeName, options);
    this.wake();
    return this.deps.storage.operations.get(id)!;
  }

  /**
   * `slotctl store move-replica STORE --to M --dry-run`: the steps and what stops the move now. Not held back by a
   * restart's grace: a move needs both machines' agents connected, which is news from this coordinator, not a state
   * its predecessor left (a machine that is down cannot be connected).
   */
  previewMoveReplica(req: MoveReplicaRequest): { plan: string[]; problems: string[] } {
    return previewMoveReplica(this.ctx, req);
  }

  startMoveReplica(req: MoveReplicaRequest): OperationRow {
    const id = startMoveReplica(this.ctx, req);
    this.wake();
    return this.deps.storage.operations.get(id)!;
  }

  /** The stores a drain of `machine` would move, as `store: from -> to` lines. */
  previewDrain(machine: string): { stores: string[]; plan: string[] } {
    return previewDrain(this.ctx, machine);
  }

  startDrain(machine: string, options: { parallel?: number | undefined; timeoutMs?: number | undefined }): OperationRow {
    const id = createDrain(this.ctx, machine, options);
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
    const stores = storesMasteredOn(this.ctx, machine);
    const row = storage.machines.get(machine)!;
    const problems: string[] = [];
    if (row.state !== 'down') problems.push(`machine ${machine} is ${row.state}, not down: its masters serve (to move them: slotctl machine drain ${machine})`);
    const grace = this.graceProblem();
    if (grace) problems.push(grace);
    const slots = new Map(storage.slots.list().map((s) => [s.name, s.machine]));
    const downWithMasters = [...new Set(storage.stores.list().map((s) => slots.get(s.masterSlot)!).filter((m) => storage.machines.get(m)?.state === 'down'))];
    const limit = this.maxAutomaticFailover;
    if (!options.force && downWithMasters.length > limit) {
      problems.push(`${downWithMasters.length} machines with masters are down at once (${downWithMasters.join(', ')}), more than automatic failover allows (${limit}): if you are sure ${machine} is gone and not cut off, add --force`);
    }
    const plan = stores.flatMap((s) => previewFailover(this.ctx, s, options.force).plan.slice(1, 2).map((line) => `${s}: ${line}`));
    if (stores.length === 0) problems.push(`machine ${machine} holds no master: nothing to fail over`);
    if (options.dryRun || problems.length) return { plan, problems, operations: [] };
    const operations: OperationRow[] = [];
    for (const store of stores) {
      try {
        operations.push(createFailover(this.ctx, store, options.force));
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
    const grace = this.graceProblem();
    if (grace) return { plan: [], problems: [grace], operations: [] };
    return this.afterRequest(retireMachine(this.ctx, machine, dryRun));
  }

  /**
   * Just started (or just elected): a machine the database says is down may still hold a lease its predecessor
   * renewed, and it has not had the time to reach this coordinator. Nothing that takes a down machine's masters away
   * is done before the grace ends, whoever asks (the automatic failover waits for it too).
   */
  private graceProblem(): string | undefined {
    const left = this.graceUntil - Date.now();
    if (left <= 0) return undefined;
    return `this coordinator started (or became leader) moments ago: machines may still hold leases its predecessor granted and are reconnecting; nothing fails over for ${Math.ceil(left / 1000)} s more — ask again then`;
  }

  /** The cluster as the planner sees it, and the stores no plan may touch now (busy, seeding, held, stopped). */
  private planInput(): { cluster: PlanCluster; busy: Set<string> } {
    const { storage } = this.deps;
    const slots = storage.slots.list();
    const busy = new Set([...storage.operations.busyStores(), ...slots.filter((s) => s.seeding || s.recoveryHold || s.adminStopped).map((s) => s.store)]);
    return { cluster: clusterFromRows({ machines: storage.machines.list(), stores: storage.stores.list(), slots }), busy };
  }

  /** The planner's rebalance over the database as it is now (busy stores and seeding replicas left alone). */
  previewRebalance(): RebalancePlan {
    const { cluster, busy } = this.planInput();
    return planRebalance(cluster, busy);
  }

  /** `slotctl plan fanout`: the replica moves that bring every machine to its fan-out (busy and seeding stores left alone). */
  previewFanOut(): FanOutPlan {
    const { cluster, busy } = this.planInput();
    return planFanOut(cluster, { exclude: busy });
  }

  /** `slotctl plan fanout --apply`: the planner's replica moves as one resumable operation. */
  startFanOut(options: RelocateOptions): { plan: FanOutPlan; operation: OperationRow | undefined } {
    const plan = this.previewFanOut();
    const tasks = tasksOf(plan.moves, 'move-replica', 0);
    return { plan, operation: this.startRelocation('fanout', '', tasks, options, `fan-out: ${plan.sentence}`) };
  }

  /** `slotctl machine add M` for a machine declared and empty: the replicas moved to it, then its share of masters. */
  previewMachineAdd(machine: string): AddMachinePlan {
    const { cluster, busy } = this.planInput();
    return planFillMachine(cluster, machine, { busy });
  }

  startMachineAdd(machine: string, options: RelocateOptions): { plan: AddMachinePlan; operation: OperationRow | undefined } {
    const plan = this.previewMachineAdd(machine);
    const tasks: RelocateTask[] = [
      ...tasksOf(plan.replicaMoves, 'move-replica', 0),
      ...tasksOf(plan.switchovers, 'switchover', 1),
    ];
    return { plan, operation: this.startRelocation('machine-add', machine, tasks, options, `machine add of ${machine}: ${plan.sentence}`) };
  }

  /** `slotctl machine evacuate M --dry-run`: its masters switched away, then its replicas moved to peers. */
  previewEvacuate(machine: string): EvacuatePlan {
    const { cluster, busy } = this.planInput();
    const room = moveRoomChecker(this.ctx);
    return planEvacuate(cluster, machine, { busy, mayHold: (store, target) => room.problem(store, machine, target), placed: (store, target) => room.place(store, machine, target) });
  }

  startEvacuate(machine: string, options: RelocateOptions): { plan: EvacuatePlan; operation: OperationRow | undefined } {
    const plan = this.previewEvacuate(machine);
    if (plan.unplaced.length) {
      throw new ConflictError(`cannot evacuate ${machine}: ${plan.unplaced.map((u) => `${u.store}: ${u.reason}`).join('; ')}`, { hint: `see the plan with slotctl machine evacuate ${machine} --dry-run` });
    }
    const tasks: RelocateTask[] = [
      ...tasksOf(plan.switchovers, 'switchover', 0),
      ...tasksOf(plan.replicaMoves, 'move-replica', 1),
    ];
    return { plan, operation: this.startRelocation('evacuate', machine, tasks, options, `evacuation of ${machine}: ${plan.sentence}`) };
  }

  private startRelocation(kind: RelocateKindName, machine: string, tasks: RelocateTask[], options: RelocateOptions, reason: string): OperationRow | undefined {
    if (tasks.length === 0) return undefined;
    const id = createRelocation(this.ctx, kind, machine, tasks, { ...options, reason });
    this.wake();
    return this.deps.storage.operations.get(id)!;
  }

  /** `slotctl plan rebalance --apply`: the planner's switchovers as one resumable operation (a drain's table). */
  startRebalance(options: { parallel?: number | undefined; timeoutMs?: number | undefined }): { plan: RebalancePlan; operation: OperationRow | undefined } {
    const plan = this.previewRebalance();
    if (plan.moves.length === 0) return { plan, operation: undefined };
    const id = createRebalance(this.ctx, plan, options);
    this.wake();
    return { plan, operation: this.deps.storage.operations.get(id)! };
  }

  /** `slotctl store recover` / `machine recover`. */
  recover(input: { store?: string | undefined; machine?: string | undefined; dryRun: boolean }): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    return this.afterRequest(requestRecovery(this.ctx, input));
  }

  /** A request that may have started operations: evaluate them at once and answer with their rows as they are now. */
  private afterRequest<T extends { operations: OperationRow[] }>(out: T): T {
    this.wake();
    return { ...out, operations: out.operations.map((op) => this.deps.storage.operations.get(op.id)!) };
  }

  cancel(id: string): OperationRow {
    return this.runner.cancel(id);
  }

  private cancelQuietly(op: OperationRow): void {
    try {
      this.cancel(op.id);
    } catch {
      // past the flip: it completes
    }
  }
}
