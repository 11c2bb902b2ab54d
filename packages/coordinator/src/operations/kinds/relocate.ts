// The relocation kinds: a list of child switchovers and replica moves run in phases, as one resumable operation.
// `slotctl machine add M --apply` (machine-add: replicas moved onto M, then the switchovers that give it masters),
// `slotctl machine evacuate M` (evacuate: M marked drained, its masters switched away, then every replica on it moved
// to a peer) and `slotctl plan fanout --apply` (fanout: the planner's replica moves). One table for the three, as the
// drain's serves drain and rebalance. A task of phase p starts only when every task of an earlier phase has ended;
// at most `parallel` children run at once (replica moves also wait for a seed slot: --max-seeds). A store never has
// fewer than two copies: a switchover swaps roles, a move seeds the new replica before the old one stops.
import { ConflictError, NotFoundError, ValidationError } from '@slotctl/shared';
import type { OperationKind as KindName, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import { cancelRunningChildren, createOperation, failedAsRemoved, type KindContext, type OperationKind } from '../framework/kind.js';
import type { Rule } from '../framework/rule.js';
import { startMoveReplica } from './move-replica-plan.js';
import { SWITCHOVER_DEFAULTS } from './switchover.js';

export type RelocateStep = 'preflight' | 'moving' | 'cancelling' | 'done';
export type RelocateAction = 'none' | 'mark-drained' | 'launch' | 'cancel-children';
export type RelocateKindName = Extract<KindName, 'machine-add' | 'evacuate' | 'fanout'>;

export interface RelocateTask {
  store: string;
  action: 'switchover' | 'move-replica';
  /** The machine the store's master (switchover) or replica (move) leaves. */
  from: string;
  /** The machine it goes to. */
  to: string;
  /** Tasks of a later phase start when every task of the earlier ones has ended. */
  phase: number;
  reason: string;
}

export interface RelocateParams {
  /** The machine filled or evacuated ('' for a fan-out). */
  machine: string;
  parallel: number;
  timeoutMs: number;
  tasks: RelocateTask[];
}

export interface RelocateView {
  now: number;
  op: OperationRow;
  params: RelocateParams;
  machineExists: boolean;
  stores: ReadonlyMap<string, StoreRow>;
  slots: ReadonlyMap<string, SlotRow>;
  children: readonly OperationRow[];
  /** Machines whose agents are connected to this coordinator now. */
  connected: ReadonlySet<string>;
  /** This coordinator started (or was elected) moments ago: agents may still be reconnecting. */
  inGrace: boolean;
  /** Stores with an operation running that is not one of this relocation's children. */
  busy: ReadonlySet<string>;
}

export type RelocateRule = Rule<RelocateView, RelocateAction, RelocateStep>;

export type TaskState = 'done' | 'failed' | 'running' | 'waiting';
export interface TaskStatus {
  task: RelocateTask;
  state: TaskState;
  /** The child operation, when one was started. */
  op: string;
  /** Why it failed, or (done) where the store went when not by this operation. */
  detail: string;
}

const conflictsOf = (op: OperationRow) => (op.result.conflicts ?? {}) as Record<string, string>;
const taskKey = (t: RelocateTask) => `${t.action}:${t.store}`;

/** Where each task stands: its child, or the store as it is now (moved by someone else, gone). */
export function taskStatuses(v: RelocateView): TaskStatus[] {
  const conflicts = conflictsOf(v.op);
  return v.params.tasks.map((task) => {
    const store = v.stores.get(task.store);
    const child = [...v.children].reverse().find((c) => c.store === task.store && c.kind === task.action);
    const at = (slot: string | undefined) => (slot ? v.slots.get(slot)?.machine : undefined);
    const master = at(store?.masterSlot);
    const replica = at(store?.replicaSlot);
    const out = (state: TaskState, detail = '') => ({ task, state, op: child?.id ?? '', detail });
    if (child?.state === 'running') return out('running');
    if (!store) return out('failed', 'the store no longer exists');
    // a child that did not succeed failed the task, even past its switch (a move whose catch-up failed: its new
    // replica is not confirmed, so nothing later may rely on it)
    if (child && child.state !== 'succeeded') return out('failed', child.error || child.state);
    const left = task.action === 'switchover' ? master !== task.from : replica !== task.from && master !== task.from;
    if (left) return out('done', (task.action === 'switchover' ? master : replica) === task.to ? '' : `now on ${task.action === 'switchover' ? master : replica}`);
    if (child) return out('failed', `${child.id} succeeded, yet ${task.store} is still on ${task.from}`);
    const conflict = conflicts[taskKey(task)];
    if (conflict) return out('failed', conflict);
    return out('waiting');
  });
}

/**
 * Why a waiting task cannot start yet, though nothing is wrong with it: the coordinator's start-up grace, a machine
 * it needs whose agent is not connected, its store busy with another operation. It waits (a refusal would fail it).
 */
export function notReady(v: RelocateView, task: RelocateTask): string | undefined {
  if (v.inGrace) return 'this coordinator started moments ago: agents are reconnecting';
  const store = v.stores.get(task.store);
  const master = store ? v.slots.get(store.masterSlot)?.machine : undefined;
  for (const m of new Set([task.from, task.to, master ?? task.from])) if (!v.connected.has(m)) return `machine ${m}'s agent is not connected`;
  if (v.busy.has(task.store)) return `store ${task.store} is busy with another operation`;
  return undefined;
}

/** The tasks to start now: waiting ones of the first phase not yet ended that are ready, up to the parallel limit. */
export function tasksToLaunch(v: RelocateView): RelocateTask[] {
  const all = taskStatuses(v);
  const open = all.filter((s) => s.state === 'running' || s.state === 'waiting');
  if (open.length === 0) return [];
  const phase = Math.min(...open.map((s) => s.task.phase));
  const running = all.filter((s) => s.state === 'running').length;
  return open
    .filter((s) => s.state === 'waiting' && s.task.phase === phase && !notReady(v, s.task))
    .slice(0, Math.max(0, v.params.parallel - running))
    .map((s) => s.task);
}

function counts(v: RelocateView): Record<TaskState, number> {
  const out: Record<TaskState, number> = { done: 0, failed: 0, running: 0, waiting: 0 };
  for (const s of taskStatuses(v)) out[s.state]++;
  return out;
}
const summary = (c: Record<TaskState, number>) => `${c.done} done, ${c.failed} failed`;
const failures = (v: RelocateView) =>
  taskStatuses(v)
    .filter((s) => s.state === 'failed')
    .map((s) => `${s.task.action} of ${s.task.store} (${s.detail})`)
    .join('; ');

export const RELOCATE_RULES: readonly RelocateRule[] = [
  { from: 'preflight', to: 'done', state: 'refused', reason: 'machine unknown', action: 'none', failure: true, doc: 'the machine (add, evacuate) is not in the cluster', when: (v) => (v.params.machine && !v.machineExists ? `machine ${v.params.machine} is not in the cluster` : undefined) },
  { from: 'preflight', to: 'moving', reason: 'machine marked drained', action: 'mark-drained', doc: 'an evacuation of M', when: (v) => (v.op.kind === 'evacuate' ? `${v.params.tasks.length} task(s) take everything off ${v.params.machine}` : undefined) },
  { from: 'preflight', to: 'moving', reason: 'tasks planned', action: 'none', doc: 'a machine add or a fan-out', when: (v) => `${v.params.tasks.length} task(s) planned` },
  { from: 'moving', to: 'cancelling', reason: 'cancelled', action: 'cancel-children', doc: 'cancel', when: (v) => (v.op.cancelRequested ? `an operator cancelled the ${v.op.kind}` : undefined) },
  {
    from: 'moving', to: 'moving', reason: 'tasks started', action: 'launch', doc: 'tasks of the current phase wait and fewer than `--parallel` children run',
    when: (v) => {
      const next = tasksToLaunch(v);
      return next.length ? `starting ${next.map((t) => `${t.action} of ${t.store}`).join(', ')}` : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'succeeded', reason: 'every task done', action: 'none', doc: 'every task done',
    when: (v) => {
      const c = counts(v);
      return c.running + c.waiting + c.failed === 0 ? summary(c) : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'failed', reason: 'some tasks failed', action: 'none', failure: true, doc: 'none runs or waits, some failed (each one\'s reason recorded)',
    when: (v) => {
      const c = counts(v);
      return c.running + c.waiting === 0 ? `${summary(c)}: ${failures(v)}` : undefined;
    },
  },
  { from: 'cancelling', to: 'done', state: 'cancelled', reason: 'running children ended', action: 'none', failure: true, doc: 'no child runs any more', when: (v) => (counts(v).running === 0 ? summary(counts(v)) : undefined) },
];

export const RELOCATE_DEFAULTS = { parallel: 2 };

function relocateView(op: OperationRow, ctx: KindContext): RelocateView {
  const { storage } = ctx;
  const params = op.params as unknown as RelocateParams;
  const children = storage.operations.children(op.id);
  const mine = new Set(children.map((c) => c.id));
  return {
    now: Date.now(),
    op,
    params,
    machineExists: !params.machine || storage.machines.get(params.machine) !== undefined,
    stores: new Map(storage.stores.list().map((s) => [s.name, s])),
    slots: new Map(storage.slots.list().map((s) => [s.name, s])),
    children,
    connected: ctx.connected(),
    inGrace: ctx.graceUntil() > Date.now(),
    busy: new Set(storage.operations.running().filter((o) => o.store && !mine.has(o.id)).map((o) => o.store!)),
  };
}

/** Why a task cannot start as planned now (its store changed since the plan), or undefined. */
function launchProblem(v: RelocateView, task: RelocateTask): string | undefined {
  const store = v.stores.get(task.store)!;
  // an earlier task of the same store failed (a machine add's move to M before the switchover to M)
  const before = taskStatuses(v).find((s) => s.task.store === task.store && s.task.phase < task.phase && s.state === 'failed');
  if (before) return `its ${before.task.action} failed (${before.detail})`;
  const master = v.slots.get(store.masterSlot)?.machine;
  const replica = v.slots.get(store.replicaSlot)?.machine;
  if (task.action === 'switchover' && replica !== task.to) return `its replica is on ${replica}, not ${task.to} as planned${task.to === v.params.machine ? ' (its move there did not happen)' : ''}`;
  if (task.action === 'move-replica' && master === task.from) return `its master is still on ${task.from}, where its replica was to leave from`;
  return undefined;
}

function launch(v: RelocateView, ctx: KindContext, task: RelocateTask): void {
  const { op } = v;
  const why = `${op.kind} ${op.id}${v.params.machine ? ` of ${v.params.machine}` : ''}: ${task.action} of ${task.store} ${task.from} -> ${task.to}`;
  try {
    const problem = launchProblem(v, task);
    if (problem) throw new ConflictError(problem);
    if (task.action === 'switchover') ctx.startSwitchover(task.store, { timeoutMs: v.params.timeoutMs, parent: op.id, reason: why });
    else startMoveReplica(ctx, { store: task.store, to: task.to, ip: '', parent: op.id, reason: why });
  } catch (err) {
    // refused for good (full, the store changed since the plan): recorded, the others go on (what only has to wait —
    // grace, an agent not connected, a busy store — waits in tasksToLaunch instead)
    const current = ctx.storage.operations.get(op.id)!;
    ctx.storage.operations.mergeResult(op.id, { conflicts: { ...conflictsOf(current), [taskKey(task)]: (err as Error).message.slice(0, 2000) } });
  }
}

/** Why a relocation waits: the phase it is in, what runs, how many wait. */
export function relocateWaiting(v: RelocateView): string {
  const all = taskStatuses(v);
  const running = all.filter((s) => s.state === 'running');
  const c = counts(v);
  const names = running.slice(0, 5).map((s) => `${s.task.action} of ${s.task.store} (${s.op})`);
  if (v.op.step === 'cancelling') return `${running.length} child operation(s) to end: ${names.join(', ')}`;
  const phases = [...new Set(v.params.tasks.map((t) => t.phase))].sort((a, b) => a - b);
  const open = all.filter((s) => s.state === 'running' || s.state === 'waiting').map((s) => s.task.phase);
  const phase = open.length ? Math.min(...open) : phases.at(-1) ?? 0;
  const held = all.filter((s) => s.state === 'waiting' && s.task.phase === phase).map((s) => notReady(v, s.task)).find(Boolean);
  return `phase ${phases.indexOf(phase) + 1} of ${phases.length}: ${running.length} running${names.length ? ` (${names.join(', ')}${running.length > 5 ? ', …' : ''})` : ''}, ${c.waiting} waiting (--parallel ${v.params.parallel}; moves also wait for a seed slot${held ? `; ${held}` : ''}); ${summary(c)}`;
}

const relocateKind = (name: RelocateKindName, idPrefix: string): OperationKind<RelocateView, RelocateAction> => ({
  name,
  idPrefix,
  rules: RELOCATE_RULES,
  actionDocs: {
    'mark-drained': 'mark M drained: no master and no moved replica is placed on it until `slotctl machine undrain M`',
    launch: 'start the current phase\'s waiting tasks (child switchovers and replica moves with `parent`), up to `--parallel` running',
    'cancel-children': 'cancel every running child (a switchover past its flip and a move past its switch complete)',
  },
  view: relocateView,
  actions: {
    none: () => undefined,
    // also re-run when a resumed operation re-enters `moving`: only an evacuation drains its machine
    'mark-drained': (v, ctx) => {
      if (v.op.kind === 'evacuate') ctx.storage.machines.setDrained(v.params.machine, true, `evacuate ${v.op.id}: nothing may be placed on ${v.params.machine} until slotctl machine undrain`, v.op.id);
    },
    launch: (v, ctx) => {
      for (const task of tasksToLaunch(v)) launch(v, ctx, task);
    },
    'cancel-children': cancelRunningChildren,
  },
  gone: failedAsRemoved('machine removed from the cluster meanwhile', 'the machine was removed'),
  epoch: () => undefined,
  crashName: (step) => `${name}-${step}`,
  cancelRefusal: () => undefined,
  waiting: relocateWaiting,
});

export const MACHINE_ADD = relocateKind('machine-add', 'ma');
export const EVACUATE = relocateKind('evacuate', 'ev');
export const FANOUT = relocateKind('fanout', 'fo');
const BY_NAME = { 'machine-add': MACHINE_ADD, evacuate: EVACUATE, fanout: FANOUT } as const;

/** Records a relocation (the caller evaluates it at once); one at a time cluster-wide, and none beside a drain of its machine. */
export function createRelocation(ctx: KindContext, kind: RelocateKindName, machine: string, tasks: RelocateTask[], options: { parallel?: number | undefined; timeoutMs?: number | undefined; reason: string }): string {
  const { storage } = ctx;
  if (machine && !storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  const parallel = options.parallel || RELOCATE_DEFAULTS.parallel;
  if (parallel < 1 || parallel > 64) throw new ValidationError(`--parallel ${parallel} is out of range`, { hint: 'use 1 to 64' });
  const busy = storage.operations.running().find((o) => o.kind in BY_NAME || (o.kind === 'drain' && machine && o.machine === machine) || o.kind === 'rebalance');
  if (busy) throw new ConflictError(`${busy.kind} ${busy.id} is running: one relocation at a time`, { hint: `follow it with slotctl operations show ${busy.id} --wait, or cancel it` });
  const params: RelocateParams = { machine, parallel, timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs, tasks };
  return createOperation(ctx, BY_NAME[kind], { ...(machine ? { machine } : {}), step: 'preflight', params: { ...params }, reason: options.reason }, (running) => new ConflictError(`cannot start: ${running.id} is running`));
}
