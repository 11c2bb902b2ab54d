// The drain and rebalance kinds: their state machine as a table (one table for both), its view and its actions. A drain moves the master role of every store mastered on a machine to
// that store's replica, as child switchovers, at most `parallel` at a time. The machine is marked drained first, so
// nothing puts a master back on it until `slotctl machine undrain`. A rebalance (`slotctl plan rebalance --apply`)
// is the same table over the planner's list of switchovers, each store moving off its own machine.
import { ConflictError, NotFoundError, ValidationError } from '@slotctl/shared';
import { OperationConflict, type OperationKind as KindName, type OperationRow, type SlotRow, type StoreRow } from '../../db/rows.js';
import type { RebalancePlan } from '@slotctl/planner';
import { cancelRunningChildren, createOperation, failedAsRemoved, type KindContext, type OperationKind } from '../framework/kind.js';
import type { Rule } from '../framework/rule.js';
import { SWITCHOVER_DEFAULTS } from './switchover.js';

export type DrainStep = 'preflight' | 'moving' | 'cancelling' | 'done';
export type DrainAction = 'none' | 'mark-drained' | 'launch' | 'cancel-children';

export interface DrainParams {
  machine: string;
  parallel: number;
  timeoutMs: number;
  /** The stores mastered on the machine when the drain started (a rebalance: the planner's switchovers). */
  stores: string[];
  /** A rebalance: the machine each store moves off (a drain: all off `machine`). */
  from?: Record<string, string> | undefined;
}

export interface DrainView {
  now: number;
  op: OperationRow;
  params: DrainParams;
  machineExists: boolean;
  stores: ReadonlyMap<string, StoreRow>;
  slots: ReadonlyMap<string, SlotRow>;
  children: readonly OperationRow[];
}

export type DrainRule = Rule<DrainView, DrainAction, DrainStep>;

export interface DrainProgress {
  moved: string[];
  failed: { store: string; op: string; error: string }[];
  running: string[];
  waiting: string[];
}

/** Where each store of the drain stands: moved off the machine, failed (with why), running, or not started. */
export function drainProgress(v: DrainView): DrainProgress {
  const out: DrainProgress = { moved: [], failed: [], running: [], waiting: [] };
  const conflicts = (v.op.result.conflicts ?? {}) as Record<string, string>;
  for (const name of v.params.stores) {
    const store = v.stores.get(name);
    const child = [...v.children].reverse().find((c) => c.store === name);
    if (!store) out.failed.push({ store: name, op: '', error: 'the store no longer exists' });
    else if (v.slots.get(store.masterSlot)?.machine !== (v.params.from?.[name] ?? v.params.machine) && (!child || child.state !== 'running')) out.moved.push(name);
    else if (child?.state === 'running') out.running.push(name);
    else if (child) out.failed.push({ store: name, op: child.id, error: child.error || child.state });
    else if (conflicts[name]) out.failed.push({ store: name, op: '', error: conflicts[name] });
    else out.waiting.push(name);
  }
  return out;
}

/** The stores to start a switchover for now: waiting ones, up to the parallel limit. */
export function storesToLaunch(v: DrainView): string[] {
  const p = drainProgress(v);
  return p.waiting.slice(0, Math.max(0, v.params.parallel - p.running.length));
}

const summary = (p: DrainProgress) => `${p.moved.length} moved, ${p.failed.length} not moved`;

export const DRAIN_RULES: readonly DrainRule[] = [
  { from: 'preflight', to: 'moving', reason: 'rebalance planned', action: 'none', doc: 'a rebalance (the planner\'s switchovers)', when: (v) => (v.op.kind === 'rebalance' ? `${v.params.stores.length} switchover(s) restore the balance of masters` : undefined) },
  { from: 'preflight', to: 'done', state: 'refused', reason: 'machine unknown', action: 'none', failure: true, doc: 'the machine is not in the cluster', when: (v) => (v.machineExists ? undefined : `machine ${v.params.machine} is not in the cluster`) },
  { from: 'preflight', to: 'moving', reason: 'machine marked drained', action: 'mark-drained', doc: 'a drain of M', when: (v) => `${v.params.stores.length} store(s) mastered on ${v.params.machine}` },
  { from: 'moving', to: 'cancelling', reason: 'cancelled', action: 'cancel-children', doc: 'cancel', when: (v) => (v.op.cancelRequested ? `an operator cancelled the ${v.op.kind}` : undefined) },
  {
    from: 'moving', to: 'moving', reason: 'switchovers started', action: 'launch', doc: 'stores wait and fewer than `--parallel` switchovers run',
    when: (v) => {
      const next = storesToLaunch(v);
      return next.length ? `starting ${next.join(', ')}` : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'succeeded', reason: 'every store moved', action: 'none', doc: 'every store moved',
    when: (v) => {
      const p = drainProgress(v);
      return p.running.length + p.waiting.length + p.failed.length === 0 ? summary(p) : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'failed', reason: 'some stores not moved', action: 'none', failure: true, doc: 'none runs or waits, some not moved (each store\'s reason recorded)',
    when: (v) => {
      const p = drainProgress(v);
      return p.running.length + p.waiting.length === 0 ? `${summary(p)}: ${p.failed.map((f) => `${f.store} (${f.error})`).join('; ')}` : undefined;
    },
  },
  {
    from: 'cancelling', to: 'done', state: 'cancelled', reason: 'running switchovers ended', action: 'none', failure: true, doc: 'no child switchover runs any more',
    when: (v) => (drainProgress(v).running.length === 0 ? summary(drainProgress(v)) : undefined),
  },
];

export const DRAIN_DEFAULTS = { parallel: 2 };

function drainView(op: OperationRow, ctx: KindContext): DrainView {
  const { storage } = ctx;
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

function launchChild(v: DrainView, ctx: KindContext, store: string): void {
  const { op } = v;
  try {
    const why = op.kind === 'rebalance' ? `rebalance ${op.id}: switchover of ${store} off ${v.params.from?.[store] ?? '?'}` : `drain ${op.id} of ${v.params.machine}: switchover of ${store}`;
    ctx.startSwitchover(store, { timeoutMs: v.params.timeoutMs, parent: op.id, reason: why });
  } catch (err) {
    // the store is busy with another operation (or vanished): the drain reports it and goes on with the others
    const current = ctx.storage.operations.get(op.id)!;
    ctx.storage.operations.mergeResult(op.id, { conflicts: { ...((current.result.conflicts ?? {}) as Record<string, string>), [store]: (err as Error).message } });
  }
}

/** Why a drain or rebalance waits: the switchovers it runs, and how many stores wait for a turn. */
export function drainWaiting(v: DrainView): string {
  const p = drainProgress(v);
  const running = `${p.running.length} switchover(s) running${p.running.length ? ` (${p.running.slice(0, 5).join(', ')}${p.running.length > 5 ? ', …' : ''})` : ''}`;
  if (v.op.step === 'cancelling') return `${running} to end`;
  return `${running}, ${p.waiting.length} store(s) waiting for a turn (--parallel ${v.params.parallel}); ${p.moved.length} moved, ${p.failed.length} not moved`;
}

const drainKind = (name: KindName, idPrefix: string): OperationKind<DrainView, DrainAction> => ({
  name,
  idPrefix,
  rules: DRAIN_RULES,
  actionDocs: {
    'mark-drained': 'mark M drained: no switchover and no cluster apply puts a master on it until `slotctl machine undrain M`',
    launch: 'start a switchover (a child with `parent`) for each waiting store, up to `--parallel` running',
    'cancel-children': 'cancel every running child switchover (those past their flip complete)',
  },
  view: drainView,
  actions: {
    none: () => undefined,
    'mark-drained': (v, ctx) => ctx.storage.machines.setDrained(v.params.machine, true, `drain ${v.op.id}: no master may be placed on ${v.params.machine} until slotctl machine undrain`, v.op.id),
    launch: (v, ctx) => {
      for (const store of storesToLaunch(v)) launchChild(v, ctx, store);
    },
    'cancel-children': cancelRunningChildren,
  },
  gone: failedAsRemoved('machine removed from the cluster meanwhile', 'the machine was removed'),
  epoch: () => undefined,
  crashName: (step) => `drain-${step}`,
  cancelRefusal: () => undefined,
  waiting: drainWaiting,
});

export const DRAIN = drainKind('drain', 'dr');
export const REBALANCE = drainKind('rebalance', 'rb');

/** The stores a drain of `machine` would move, as `store: from -> to` lines. */
export function previewDrain(ctx: KindContext, machine: string): { stores: string[]; plan: string[] } {
  const { storage } = ctx;
  if (!storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  const slots = new Map(storage.slots.list().map((s) => [s.name, s]));
  const stores = storage.stores.list().filter((s) => slots.get(s.masterSlot)?.machine === machine);
  return {
    stores: stores.map((s) => s.name),
    plan: stores.map((s) => `${s.name}: ${s.masterSlot} (${machine}) -> ${s.replicaSlot} (${slots.get(s.replicaSlot)?.machine ?? '?'})`),
  };
}

function checkParallel(parallel: number): void {
  if (parallel < 1 || parallel > 64) throw new ValidationError(`--parallel ${parallel} is out of range`, { hint: 'use 1 to 64' });
}

/** A machine add, evacuation or fan-out plans from the cluster as it was: no drain or rebalance moves masters beside it. */
function refuseBesideRelocation(ctx: KindContext): void {
  const running = ctx.storage.operations.running().find((o) => o.kind === 'machine-add' || o.kind === 'evacuate' || o.kind === 'fanout');
  if (running) throw new ConflictError(`${running.kind} ${running.id} is running: it moves stores by a plan a drain or rebalance would upset`, { hint: `wait for it (slotctl operations show ${running.id} --wait) or cancel it` });
}

/** Records a drain of `machine` (the caller evaluates it at once); returns its id. */
export function createDrain(ctx: KindContext, machine: string, options: { parallel?: number | undefined; timeoutMs?: number | undefined }): string {
  const { stores } = previewDrain(ctx, machine);
  const parallel = options.parallel || DRAIN_DEFAULTS.parallel;
  checkParallel(parallel);
  refuseBesideRelocation(ctx);
  const params: DrainParams = { machine, parallel, timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs, stores };
  return createOperation(
    ctx,
    DRAIN,
    { machine, step: 'preflight', params: { ...params }, reason: `drain of ${machine} requested: ${stores.length} store(s) to move, ${parallel} at a time` },
    (running) => new ConflictError(`machine ${machine} is already being drained: ${new OperationConflict(running).message}`, { hint: `follow it with slotctl operations show ${running.id} --wait` }),
  );
}

/** Records the planner's switchovers as one rebalance (the caller evaluates it at once); returns its id. */
export function createRebalance(ctx: KindContext, plan: RebalancePlan, options: { parallel?: number | undefined; timeoutMs?: number | undefined }): string {
  const parallel = options.parallel || DRAIN_DEFAULTS.parallel;
  checkParallel(parallel);
  refuseBesideRelocation(ctx);
  const running = ctx.storage.operations.running().find((o) => o.kind === 'rebalance');
  if (running) throw new ConflictError(`a rebalance is already running: ${running.id}`, { hint: `follow it with slotctl operations show ${running.id} --wait` });
  const params: DrainParams = {
    machine: '',
    parallel,
    timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs,
    stores: plan.moves.map((m) => m.store),
    from: Object.fromEntries(plan.moves.map((m) => [m.store, m.from])),
  };
  return createOperation(ctx, REBALANCE, { step: 'preflight', params: { ...params, moves: plan.moves }, reason: `rebalance requested: ${plan.sentence}` }, (r) => new ConflictError(new OperationConflict(r).message));
}
