// Pure: the drain state machine as a table. A drain moves the master role of every store mastered on a machine to
// that store's replica, as child switchovers, at most `parallel` at a time. The machine is marked drained first, so
// nothing puts a master back on it until `slotctl machine undrain`. A rebalance (`slotctl plan rebalance --apply`)
// is the same table over the planner's list of switchovers, each store moving off its own machine.
import type { OperationRow, OperationState, SlotRow, StoreRow } from '../db/rows.js';
import { firstMatching } from './rule-table.js';

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

export interface DrainRule {
  from: DrainStep;
  to: DrainStep;
  state?: OperationState;
  reason: string;
  when: (v: DrainView) => string | undefined;
  action: DrainAction;
}

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
  { from: 'preflight', to: 'moving', reason: 'rebalance planned', action: 'none', when: (v) => (v.op.kind === 'rebalance' ? `${v.params.stores.length} switchover(s) restore the balance of masters` : undefined) },
  { from: 'preflight', to: 'done', state: 'refused', reason: 'machine unknown', action: 'none', when: (v) => (v.machineExists ? undefined : `machine ${v.params.machine} is not in the cluster`) },
  { from: 'preflight', to: 'moving', reason: 'machine marked drained', action: 'mark-drained', when: (v) => `${v.params.stores.length} store(s) mastered on ${v.params.machine}` },
  { from: 'moving', to: 'cancelling', reason: 'cancelled', action: 'cancel-children', when: (v) => (v.op.cancelRequested ? `an operator cancelled the ${v.op.kind}` : undefined) },
  {
    from: 'moving', to: 'moving', reason: 'switchovers started', action: 'launch',
    when: (v) => {
      const next = storesToLaunch(v);
      return next.length ? `starting ${next.join(', ')}` : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'succeeded', reason: 'every store moved', action: 'none',
    when: (v) => {
      const p = drainProgress(v);
      return p.running.length + p.waiting.length + p.failed.length === 0 ? summary(p) : undefined;
    },
  },
  {
    from: 'moving', to: 'done', state: 'failed', reason: 'some stores not moved', action: 'none',
    when: (v) => {
      const p = drainProgress(v);
      return p.running.length + p.waiting.length === 0 ? `${summary(p)}: ${p.failed.map((f) => `${f.store} (${f.error})`).join('; ')}` : undefined;
    },
  },
  {
    from: 'cancelling', to: 'done', state: 'cancelled', reason: 'running switchovers ended', action: 'none',
    when: (v) => (drainProgress(v).running.length === 0 ? summary(drainProgress(v)) : undefined),
  },
];

export function firstDrainRule(v: DrainView): { rule: DrainRule; detail: string } | undefined {
  return firstMatching(DRAIN_RULES, v);
}
