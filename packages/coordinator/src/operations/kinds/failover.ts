// The disaster failover of one store: its table, its view and its one action (the promotion). The old master's machine was declared down (its lease and
// a margin passed: its fence has stopped its masters), so nothing is replayed: the replica is promoted as it is,
// and what the old master may not have replicated is recorded as at risk. States cause no actions, transitions do.
//
//   preflight ─► promote ─► start ─► done
//       │
//       ▼
//    refused (the machine is back, the store changed, or the replica cannot take over)
import { ConflictError, NotFoundError, withContext } from '@slotctl/shared';
import { OperationConflict, type MachineRow, type OperationRow, type SlotRow, type StoreRow } from '../../db/rows.js';
import { createOperation, failedAsRemoved, neverCancelled, type KindContext, type OperationKind } from '../framework/kind.js';
import { pairRows, type PairView } from '../framework/pair.js';
import { stepAge, until, type Rule } from '../framework/rule.js';

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

export type FailoverView = PairView<FailoverParams>;

export type FailoverRule = Rule<FailoverView, FailoverAction, FailoverStep>;

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
  // a former master held stopped since an earlier failover (its unreplicated changes not yet recovered) has none of
  // the mail its successor took since: promoting it serves old mail, and it stays held, so nothing serves at all
  // (the soak, seed 3274726004: a second machine loss promoted such a slot and the store stayed down)
  if (v.to.recoveryHold) problems.push(`slot ${v.to.name} is a former master held stopped since failover ${v.to.recoveryHold} until what it did not replicate is recovered: it lacks what ${v.from.name} took since; promoting it would serve old mail (bring ${v.fromMachine.name} back; recover ${v.to.name} with slotctl store recover ${v.store.name} once both machines are up)`);
  else if (v.to.epochApplied !== v.store.epoch || v.to.observedRole !== 'REPLICA') problems.push(`slot ${v.to.name} is ${v.to.observedRole || 'nothing'} at epoch ${v.to.epochApplied}, not the replica at epoch ${v.store.epoch}`);
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
    doc: 'the store changed meanwhile, the old master\'s machine is no longer down, its slot never reported, the replica\'s machine is not up and connected, the replica is being seeded, is a former master held for recovery, or is not the replica at E',
    when: (v) => failoverProblems(v).join('; ') || undefined,
  },
  {
    from: 'preflight', to: 'promote', reason: 'old master machine is down', action: 'promote', doc: 'otherwise',
    when: (v) => `${v.fromMachine.name} down since ${v.fromMachine.stateSince}; ${v.to.name} on ${v.toMachine.name} takes over${v.params.forced ? ' (forced by an operator)' : ''}`,
  },
  {
    from: 'promote', to: 'start', reason: 'replica promoted in the database', action: 'none', doc: 'the database says B at E+1',
    when: (v) => (v.store.masterSlot === v.params.to && v.store.epoch === v.params.epoch + 1 ? `${v.params.to} is master at epoch ${v.store.epoch}` : undefined),
  },
  {
    from: 'promote', to: 'done', state: 'failed', reason: 'store changed meanwhile', action: 'none', failure: true, doc: 'the promotion did not happen: the store\'s epoch moved meanwhile',
    when: (v) => (v.store.masterSlot !== v.params.to && v.store.epoch !== v.params.epoch ? `epoch is ${v.store.epoch}, expected ${v.params.epoch}` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'succeeded', reason: 'new master serves', action: 'none', doc: 'B serves as master at E+1',
    when: (v) => (v.to.observedState === 'SERVING' && v.to.observedRole === 'MASTER' && v.to.epochApplied === v.params.epoch + 1 ? `${v.to.name} serves as master at epoch ${v.params.epoch + 1} on ${v.toMachine.name}` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new master not confirmed', action: 'none', failure: true, doc: '60 s without that',
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database names ${v.to.name} master (epoch ${v.params.epoch + 1}), but within ${v.params.settleTimeoutMs / 1000} s it is ${v.to.observedState} as ${v.to.observedRole || 'nothing'}${v.to.lastError ? `: ${v.to.lastError}` : ''}`
        : undefined,
  },
];


export const FAILOVER_DEFAULTS = { settleTimeoutMs: 60_000, maxAutomaticMachines: 1 };

function failoverView(op: OperationRow, ctx: KindContext): FailoverView | undefined {
  const { storage } = ctx;
  const params = op.params as unknown as FailoverParams;
  const pair = pairRows(storage, op.store, params);
  return pair && { now: Date.now(), op, params, ...pair, connected: ctx.connected() };
}

/** One transaction: the replica promoted (epoch + 1), the old master held stopped, its last backlog recorded at risk. */
function promote(v: FailoverView, ctx: KindContext): void {
  const { storage } = ctx;
  const p = v.params;
  const log = withContext(ctx.log, { op: v.op.id, store: v.store.name, epoch: p.epoch + 1 });
  try {
    storage.transaction(() => {
      storage.stores.setMaster(v.store.name, p.to, p.epoch, `failover ${v.op.id}: ${p.fromMachine} is down; ${p.from} -> ${p.to}`, v.op.id);
      // the old master comes back stopped, and stays so until what it did not replicate is recovered
      storage.slots.setRecoveryHold(p.from, v.op.id);
      storage.slots.setOpHold(p.from, '');
      if (!storage.atRisk.openOfSlot(p.from)) {
        storage.atRisk.create({ store: v.store.name, slot: p.from, machine: p.fromMachine, op: v.op.id, epoch: p.epoch + 1, backlog: { ...v.from.backlog, reportedAt: v.from.reportedAt } });
      }
    });
    log.warn({ from: p.from, to: p.to, backlog: v.from.backlog }, `failover: ${p.to} promoted; ${p.from}'s last backlog (${v.from.backlog.files} file(s), ${v.from.backlog.mailboxes} mailbox(es)) recorded as at risk`);
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'promotion not done');
  }
  ctx.push([p.toMachine, p.fromMachine]);
}

export function failoverWaiting(v: FailoverView): string {
  const p = v.params;
  if (v.op.step === 'promote') return `the promotion in the database (store ${v.store.name}: master ${v.store.masterSlot} at epoch ${v.store.epoch})`;
  if (v.op.step === 'start') {
    return `${p.to} to serve as master at epoch ${p.epoch + 1} on ${p.toMachine} (now ${v.to.observedState} as ${v.to.observedRole || 'nothing'} at ${v.to.epochApplied}${v.connected.has(p.toMachine) ? '' : ', its agent not connected'}), ${until(v.op.stepSince, p.settleTimeoutMs)}`;
  }
  return '';
}

export const FAILOVER: OperationKind<FailoverView, FailoverAction> = {
  name: 'failover',
  idPrefix: 'fo',
  rules: FAILOVER_RULES,
  actionDocs: {
    promote: 'one transaction: master B at E+1, A held stopped (`recovery_hold`), A\'s last reported backlog recorded as at risk; both agents get their new desired state',
  },
  view: failoverView,
  actions: { none: () => undefined, promote },
  gone: failedAsRemoved('store or slot removed from the cluster meanwhile', 'the store or one of its slots was removed', 0),
  epoch: (v, rule) => (rule.action === 'promote' ? v.params.epoch : v.store.epoch),
  crashName: (step) => `failover-${step}`,
  cancelRefusal: neverCancelled('a failover: the old master\'s machine is down, there is nothing to roll back to', 'wait for it to end (slotctl operations show ID --wait)'),
  waiting: failoverWaiting,
};

/** A failover of one store: its parameters, why it cannot start now, and its steps in words. */
export function previewFailover(ctx: KindContext, storeName: string, forced: boolean): { params: FailoverParams; problems: string[]; plan: string[] } {
  const { storage } = ctx;
  const store = storage.stores.get(storeName);
  if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
  const from = storage.slots.get(store.masterSlot)!;
  const to = storage.slots.get(store.replicaSlot)!;
  const params: FailoverParams = { from: from.name, to: to.name, fromMachine: from.machine, toMachine: to.machine, epoch: store.epoch, settleTimeoutMs: FAILOVER_DEFAULTS.settleTimeoutMs, forced };
  const v = { params, store, from, to, fromMachine: storage.machines.get(from.machine)!, toMachine: storage.machines.get(to.machine)!, connected: ctx.connected() };
  return { params, problems: failoverProblems(v), plan: failoverPlan(params, store.name, store.serviceIp) };
}

/** Records a failover of one store (ConflictError when the store is busy). */
export function createFailover(ctx: KindContext, storeName: string, forced: boolean): OperationRow {
  const { params } = previewFailover(ctx, storeName, forced);
  const id = createOperation(
    ctx,
    FAILOVER,
    {
      store: storeName,
      step: 'preflight',
      params: { ...params },
      epoch: params.epoch,
      reason: `failover of ${storeName}: master machine ${params.fromMachine} is down; ${params.to} (${params.toMachine}) takes over${forced ? ' (forced by an operator)' : ''}`,
    },
    (running) => new ConflictError(`store ${storeName} is busy: ${new OperationConflict(running).message}`, { hint: `wait for it: slotctl operations show ${running.id} --wait` }),
  );
  return ctx.storage.operations.get(id)!;
}

/** The stores whose master is on `machine` (the operator's `machine failover`). */
export function storesMasteredOn(ctx: KindContext, machine: string): string[] {
  const { storage } = ctx;
  if (!storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  return storage.stores.masteredOn(machine).map((s) => s.name);
}
