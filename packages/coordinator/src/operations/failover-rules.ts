// Pure: the disaster failover of one store as a table. The old master's machine was declared down (its lease and
// a margin passed: its fence has stopped its masters), so nothing is replayed: the replica is promoted as it is,
// and what the old master may not have replicated is recorded as at risk. States cause no actions, transitions do.
//
//   preflight ─► promote ─► start ─► done
//       │
//       ▼
//    refused (the machine is back, the store changed, or the replica cannot take over)
import type { MachineRow, OperationRow, OperationState, SlotRow, StoreRow } from '../db/rows.js';
import { firstMatching } from './rule-table.js';

export type FailoverStep = 'preflight' | 'promote' | 'start' | 'done' | 'refused';
export type FailoverAction = 'none' | 'promote';

export interface FailoverParams {
  from: string;
  to: string;
  fromMachine: string;
  toMachine: string;
  epoch: number;
  settleTimeoutMs: number;
  /** An operator forced it (more machines down than automatic failover allows). */
  forced: boolean;
}

export interface FailoverView {
  now: number;
  op: OperationRow;
  params: FailoverParams;
  store: StoreRow;
  from: SlotRow;
  to: SlotRow;
  fromMachine: MachineRow;
  toMachine: MachineRow;
  connected: ReadonlySet<string>;
}

export interface FailoverRule {
  from: FailoverStep;
  to: FailoverStep;
  state?: OperationState;
  reason: string;
  when: (v: FailoverView) => string | undefined;
  action: FailoverAction;
  failure?: boolean;
}

const stepAge = (v: FailoverView) => v.now - Date.parse(v.op.stepSince);

/** Why the replica cannot take over now; empty when it can. */
export function failoverProblems(v: Omit<FailoverView, 'op' | 'now'>): string[] {
  const problems: string[] = [];
  if (v.store.masterSlot !== v.params.from || v.store.epoch !== v.params.epoch) problems.push(`store ${v.store.name} changed meanwhile: master ${v.store.masterSlot} at epoch ${v.store.epoch}`);
  if (v.fromMachine.state !== 'down') problems.push(`machine ${v.fromMachine.name} is ${v.fromMachine.state} again: its masters serve (or start) by themselves`);
  // a master that never reported never served: its machine has not come up yet (a new cluster, a slow boot)
  if (v.from.reportedAt === null) problems.push(`slot ${v.from.name} (master) has never reported: it never served, there is nothing to take over`);
  if (v.toMachine.state !== 'up') problems.push(`the replica's machine ${v.toMachine.name} is ${v.toMachine.state}: store ${v.store.name} has no slot that can serve (both machines lost)`);
  else if (!v.connected.has(v.toMachine.name)) problems.push(`the agent of ${v.toMachine.name} (replica) is not connected`);
  if (v.to.seeding) problems.push(`slot ${v.to.name} is a new replica still being seeded (${v.to.seeding}): it may not hold all of the mail yet; promoting it could lose mail (wait for ${v.fromMachine.name} to return, or for the seed to finish)`);
  if (v.to.epochApplied !== v.store.epoch || v.to.observedRole !== 'REPLICA') problems.push(`slot ${v.to.name} is ${v.to.observedRole || 'nothing'} at epoch ${v.to.epochApplied}, not the replica at epoch ${v.store.epoch}`);
  return problems;
}

export function failoverPlan(p: FailoverParams, store: string, serviceIp: string): string[] {
  return [
    `preflight: ${p.fromMachine} is down (its fence stopped its masters), ${p.toMachine} up with ${p.to} as replica at epoch ${p.epoch}`,
    `promote: ${store} master ${p.from} -> ${p.to} in one transaction, epoch ${p.epoch} -> ${p.epoch + 1}; ${p.from}'s last reported backlog is recorded as at risk; ${p.from} stays stopped when it returns until slotctl store recover ${store}`,
    `start: ${p.to} serves as master with ${serviceIp} (ARP conflict probe, gratuitous ARP)`,
  ];
}

export const FAILOVER_RULES: readonly FailoverRule[] = [
  {
    from: 'preflight', to: 'refused', state: 'refused', reason: 'cannot fail over', action: 'none', failure: true,
    when: (v) => failoverProblems(v).join('; ') || undefined,
  },
  {
    from: 'preflight', to: 'promote', reason: 'old master machine is down', action: 'promote',
    when: (v) => `${v.fromMachine.name} down since ${v.fromMachine.stateSince}; ${v.to.name} on ${v.toMachine.name} takes over${v.params.forced ? ' (forced by an operator)' : ''}`,
  },
  {
    from: 'promote', to: 'start', reason: 'replica promoted in the database', action: 'none',
    when: (v) => (v.store.masterSlot === v.params.to && v.store.epoch === v.params.epoch + 1 ? `${v.params.to} is master at epoch ${v.store.epoch}` : undefined),
  },
  {
    from: 'promote', to: 'done', state: 'failed', reason: 'store changed meanwhile', action: 'none', failure: true,
    when: (v) => (v.store.masterSlot !== v.params.to && v.store.epoch !== v.params.epoch ? `epoch is ${v.store.epoch}, expected ${v.params.epoch}` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'succeeded', reason: 'new master serves', action: 'none',
    when: (v) => (v.to.observedState === 'SERVING' && v.to.observedRole === 'MASTER' && v.to.epochApplied === v.params.epoch + 1 ? `${v.to.name} serves as master at epoch ${v.params.epoch + 1} on ${v.toMachine.name}` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new master not confirmed', action: 'none', failure: true,
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database names ${v.to.name} master (epoch ${v.params.epoch + 1}), but within ${v.params.settleTimeoutMs / 1000} s it is ${v.to.observedState} as ${v.to.observedRole || 'nothing'}${v.to.lastError ? `: ${v.to.lastError}` : ''}`
        : undefined,
  },
];

export function firstFailoverRule(v: FailoverView): { rule: FailoverRule; detail: string } | undefined {
  return firstMatching(FAILOVER_RULES, v);
}

/**
 * Pure: which machines' stores fail over automatically. More machines with masters down at once than allowed: none
 * (withheld: a network problem is likelier). While another machine with masters is only suspect, wait: if it goes
 * down too, that is two at once.
 */
export function automaticFailover(down: readonly string[], suspect: readonly string[], maxMachines: number): { machines: string[]; withheld: string[]; waitingFor: string[] } {
  if (down.length > maxMachines) return { machines: [], withheld: [...down], waitingFor: [] };
  if (down.length + suspect.length > maxMachines) return { machines: [], withheld: [], waitingFor: [...suspect] };
  return { machines: [...down], withheld: [], waitingFor: [] };
}
