// The recovery kind: what a failover left on a returned old master, as a table, with its view and actions. The returning slot is stopped (its
// recovery hold) and has moved its leftover sync logs into quarantine. Its agent pushes each mailbox those logs name
// to the new master (sync_client -m, against a temporary sync_server the new master opens without a restart), then
// checks every message GUID of each such mailbox on the new master. Nothing on the new master is deleted or replaced.
//
//   preflight ─► listen ─► push ─► close ─► done        (close: listener shut; when every message was verified the
//       │                    │                           at-risk record closes and the hold is released)
//       ▼                    └─(timeout)─► close
//    refused
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError } from '@slotctl/shared';
import { OperationConflict, type AtRiskRow, type MachineRow, type OperationRow, type SlotRow, type StoreRow } from '../../db/rows.js';
import { failedAsRemoved, neverCancelled, type KindContext, type OperationKind } from '../framework/kind.js';
import { pairRows } from '../framework/pair.js';
import { age, stepAge, until, type Rule } from '../framework/rule.js';

export type RecoveryStep = 'preflight' | 'listen' | 'push' | 'close' | 'done' | 'refused';
export type RecoveryAction = 'none' | 'open-listener' | 'request-push' | 'close';

export interface RecoveryParams {
  /** The returning old master and the new master. */
  old: string;
  target: string;
  oldMachine: string;
  targetMachine: string;
  atRisk: number;
  mailboxes: string[];
  timeoutMs: number;
}

export interface RecoveryView {
  now: number;
  op: OperationRow;
  params: RecoveryParams;
  store: StoreRow;
  old: SlotRow;
  target: SlotRow;
  oldMachine: MachineRow;
  targetMachine: MachineRow;
  atRisk: AtRiskRow | undefined;
  connected: ReadonlySet<string>;
}

export type RecoveryRule = Rule<RecoveryView, RecoveryAction, RecoveryStep>;

/** Why a recovery of this store cannot start now; empty when it can. */
export function recoveryProblems(v: Omit<RecoveryView, 'op' | 'now' | 'params'> & { params?: RecoveryParams }): string[] {
  const problems: string[] = [];
  if (!v.atRisk || v.atRisk.closedAt !== null) return [`store ${v.store.name} has no open at-risk record: nothing to recover`];
  if (v.store.masterSlot !== v.target.name) problems.push(`the master of ${v.store.name} is ${v.store.masterSlot}, not ${v.target.name}`);
  if (v.oldMachine.state !== 'up' || !v.connected.has(v.oldMachine.name)) problems.push(`machine ${v.oldMachine.name} (the old master) is ${v.oldMachine.state}${v.connected.has(v.oldMachine.name) ? '' : ', its agent not connected'}: it has not returned yet`);
  else if (v.old.epochApplied !== v.store.epoch || v.old.observedRole !== 'REPLICA' || !v.old.quarantine) {
    problems.push(`slot ${v.old.name} has not reported back as a stopped replica at epoch ${v.store.epoch} with its quarantine yet`);
  }
  if (!(v.target.observedState === 'SERVING' && v.target.observedRole === 'MASTER' && v.target.epochApplied === v.store.epoch)) {
    problems.push(`slot ${v.target.name} (new master) is ${v.target.observedState} as ${v.target.observedRole || 'nothing'} at epoch ${v.target.epochApplied}, not serving as master at epoch ${v.store.epoch}`);
  }
  if (!v.connected.has(v.targetMachine.name)) problems.push(`the agent of ${v.targetMachine.name} (new master) is not connected`);
  return problems;
}

export function recoveryPlan(p: RecoveryParams, store: string): string[] {
  return [
    `preflight: ${p.old} is back on ${p.oldMachine}, stopped, its leftover sync logs quarantined; ${p.target} serves as master`,
    `listen: ${p.target} opens a temporary sync_server on its slot IP (cyrus.conf + SIGHUP, no restart)`,
    `push: ${p.old} pushes ${p.mailboxes.length} mailbox(es) one by one (sync_client -m; creates missing ones, merges existing ones, never deletes), then checks every message GUID of each on ${p.target}`,
    `close: the listener closes; the at-risk record of ${store} is closed with the result; when every message was found on ${p.target}, ${p.old} starts as its replica`,
  ];
}

const pushed = (v: RecoveryView) => (v.old.results['recover-push']?.op === v.op.id && v.old.results['recover-push'].done ? v.old.results['recover-push'] : undefined);

/** Every mailbox pushed (or copied) and verified, or absent on the old slot. */
export function recoveryComplete(result: NonNullable<SlotRow['results']['recover-push']>): boolean {
  return !result.error && result.mailboxes.every((m) => (m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0);
}

export const RECOVERY_RULES: readonly RecoveryRule[] = [
  { from: 'preflight', to: 'refused', state: 'refused', reason: 'cannot recover now', action: 'none', failure: true, doc: 'no open at-risk record, the master moved, the old master not back as a stopped replica with its quarantine, the new master not serving or not connected', when: (v) => recoveryProblems(v).join('; ') || undefined },
  { from: 'preflight', to: 'listen', reason: 'old master returned', action: 'open-listener', doc: 'otherwise', when: (v) => `${v.old.name} quarantined ${v.old.quarantine?.files.length ?? 0} sync log(s) naming ${v.params.mailboxes.length} mailbox(es)` },
  {
    from: 'listen', to: 'push', reason: 'new master listens', action: 'request-push', doc: 'the new master reports its temporary sync_server open',
    when: (v) => (v.target.recoverListening === v.op.id ? `${v.target.name} accepts sync connections for the recovery` : undefined),
  },
  {
    from: 'push', to: 'close', reason: 'pushed and verified', action: 'close', doc: 'every mailbox pushed (or copied) and every message found on the new master',
    when: (v) => {
      const r = pushed(v);
      return r && recoveryComplete(r) ? `${r.mailboxes.length} mailbox(es) recovered, every message found on ${v.target.name}` : undefined;
    },
  },
  {
    from: 'push', to: 'close', reason: 'recovery incomplete', action: 'close', failure: true, doc: 'the old master\'s result names a mailbox not recovered',
    when: (v) => {
      const r = pushed(v);
      if (!r) return undefined;
      const bad = r.mailboxes.filter((m) => !((m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0));
      const what = bad.map((m) => `${m.name} (${m.result}${m.missing ? `, ${m.missing} message(s) not on the new master` : ''}${m.detail ? `: ${m.detail}` : ''})`);
      return `${r.mailboxes.length - bad.length} of ${r.mailboxes.length} mailbox(es) recovered; not: ${[r.error, ...what].filter(Boolean).join('; ')}`;
    },
  },
  ...(['listen', 'push'] as const).map((from) => ({
    from, to: 'close' as const, reason: 'timed out', action: 'close' as const, failure: true, doc: 'no result within the timeout (10 min)',
    when: (v: RecoveryView) => (age(v) > v.params.timeoutMs ? `no result within ${v.params.timeoutMs / 1000} s (at step ${v.op.step})` : undefined),
  })),
  {
    from: 'close', to: 'done', state: 'succeeded', reason: 'recovery complete', action: 'none', doc: 'the listener closed and everything was recovered',
    when: (v) => (v.target.recoverListening === '' && pushed(v) && recoveryComplete(pushed(v)!) ? `at-risk record closed; ${v.old.name} starts as replica` : undefined),
  },
  {
    from: 'close', to: 'done', state: 'failed', reason: 'recovery incomplete', action: 'none', failure: true, doc: 'otherwise, once the listener closed (or after 30 s)',
    when: (v) =>
      v.target.recoverListening === '' || stepAge(v) > 30_000
        ? `the at-risk record stays open with what was tried, and ${v.old.name} stays stopped: ${v.op.error || 'not every message could be verified'}`
        : undefined,
  },
];

export const RECOVERY_DEFAULTS = { timeoutMs: 600_000 };

function recoveryView(op: OperationRow, ctx: KindContext): RecoveryView | undefined {
  const { storage } = ctx;
  const params = op.params as unknown as RecoveryParams;
  // the old master pushes to the new one: a pair from old to target
  const pair = pairRows(storage, op.store, { from: params.old, to: params.target, fromMachine: params.oldMachine, toMachine: params.targetMachine });
  if (!pair) return undefined;
  const atRisk = storage.atRisk.list(pair.store.name).find((r) => r.id === params.atRisk);
  return { now: Date.now(), op, params, store: pair.store, old: pair.from, target: pair.to, oldMachine: pair.fromMachine, targetMachine: pair.toMachine, atRisk, connected: ctx.connected() };
}

function closeRecovery(v: RecoveryView, ctx: KindContext): void {
  const { storage } = ctx;
  const p = v.params;
  const result = v.old.results['recover-push']?.op === v.op.id ? v.old.results['recover-push'] : undefined;
  const complete = result !== undefined && result.done && recoveryComplete(result);
  storage.transaction(() => {
    storage.requests.withdraw(p.target, 'recover-listen');
    storage.requests.withdraw(p.old, 'recover-push');
    const record = storage.atRisk.list(v.store.name).find((r) => r.id === p.atRisk);
    if (record && record.closedAt === null) closeRecord(record, v, ctx, complete, result);
    if (complete) storage.slots.setRecoveryHold(p.old, '');
  });
  ctx.push([p.targetMachine, p.oldMachine]);
}

function closeRecord(record: AtRiskRow, v: RecoveryView, ctx: KindContext, complete: boolean, result: RecoveryView['old']['results']['recover-push']): void {
  const summary = { op: v.op.id, mailboxes: result?.mailboxes ?? [], error: result?.error ?? (result ? '' : 'no result from the returning slot') };
  ctx.storage.atRisk.update(record, {
    state: complete ? 'recovered' : 'open',
    result: summary,
    op: v.op.id,
    reason: complete
      ? `recovered by ${v.op.id}: ${summary.mailboxes.length} mailbox(es) pushed to ${v.params.target}, every message verified there; ${v.params.old} starts as replica`
      : `recovery ${v.op.id} incomplete: the record stays open, ${v.params.old} stays stopped; see slotctl store at-risk ${v.store.name} --json for each mailbox`,
  });
}

export function recoveryWaiting(v: RecoveryView): string {
  const p = v.params;
  const left = `, ${until(v.op.createdAt, p.timeoutMs)}`;
  if (v.op.step === 'listen') return `${p.target} to open its temporary sync_server for the recovery${v.connected.has(p.targetMachine) ? '' : ` (the agent of ${p.targetMachine} is not connected)`}${left}`;
  if (v.op.step === 'push') return `${p.old} to push ${p.mailboxes.length} mailbox(es) to ${p.target} and verify them${v.connected.has(p.oldMachine) ? '' : ` (the agent of ${p.oldMachine} is not connected)`}${left}`;
  if (v.op.step === 'close') return `${p.target} to close its temporary sync_server (at most ${until(v.op.stepSince, 30_000)})`;
  return '';
}

export const RECOVERY: OperationKind<RecoveryView, RecoveryAction> = {
  name: 'recover',
  idPrefix: 'rc',
  rules: RECOVERY_RULES,
  actionDocs: {
    'open-listener': 'mark the at-risk record recovering; ask the new master to open a temporary sync_server (cyrus.conf + SIGHUP)',
    'request-push': 'ask the old master to push each named mailbox (sync_client -m) and verify every message GUID on the new master',
    close: 'one transaction: both requests cleared, the at-risk record closed with the result (recovered, or left open), the hold released when complete',
  },
  view: recoveryView,
  actions: {
    none: () => undefined,
    'open-listener': (v, ctx) => {
      if (v.atRisk?.state === 'open') ctx.storage.atRisk.update(v.atRisk, { state: 'recovering', reason: `recovery ${v.op.id} started`, op: v.op.id });
      ctx.storage.requests.put(v.params.target, { kind: 'recover-listen', id: v.op.id });
      ctx.push([v.params.targetMachine]);
    },
    'request-push': (v, ctx) => {
      ctx.storage.requests.put(v.params.old, { kind: 'recover-push', id: v.op.id, targetSlot: v.params.target, mailboxes: v.params.mailboxes });
      ctx.push([v.params.oldMachine]);
    },
    close: closeRecovery,
  },
  gone: failedAsRemoved('store or slot removed from the cluster meanwhile', 'the store or one of its slots was removed', 0),
  epoch: (v) => v.store.epoch,
  crashName: (step) => `recover-${step}`,
  cancelRefusal: neverCancelled('a recovery: it only adds mail to the new master and ends at its timeout', 'wait for it to end (slotctl operations show ID --wait)'),
  waiting: recoveryWaiting,
};

type Candidate = Omit<RecoveryView, 'op' | 'now' | 'params'>;

function candidate(ctx: KindContext, storeName: string): Candidate {
  const { storage } = ctx;
  const store = storage.stores.get(storeName);
  if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
  const atRisk = storage.atRisk.list(storeName).find((r) => r.closedAt === null);
  const old = storage.slots.get(atRisk?.slot ?? store.replicaSlot)!;
  const target = storage.slots.get(store.masterSlot)!;
  return { store, atRisk, old, target, oldMachine: storage.machines.get(old.machine)!, targetMachine: storage.machines.get(target.machine)!, connected: ctx.connected() };
}

function paramsOf(v: Candidate): RecoveryParams {
  return {
    old: v.old.name,
    target: v.target.name,
    oldMachine: v.old.machine,
    targetMachine: v.target.machine,
    atRisk: v.atRisk?.id ?? 0,
    mailboxes: v.old.quarantine?.mailboxes ?? v.atRisk?.mailboxes ?? [],
    timeoutMs: RECOVERY_DEFAULTS.timeoutMs,
  };
}

/** `slotctl store recover STORE` / `machine recover M`: preview or start one recovery per store. */
export function requestRecovery(ctx: KindContext, input: { store?: string | undefined; machine?: string | undefined; dryRun: boolean }): { plan: string[]; problems: string[]; operations: OperationRow[] } {
  const { storage } = ctx;
  if (!input.store === !input.machine) throw new ValidationError('name a store or a machine to recover');
  let stores: string[];
  if (input.store) stores = [input.store];
  else {
    if (!storage.machines.get(input.machine!)) throw new NotFoundError(`machine "${input.machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
    stores = [...new Set(storage.atRisk.listOpen().filter((r) => r.machine === input.machine).map((r) => r.store))];
    if (stores.length === 0) return { plan: [], problems: [`machine ${input.machine} has no open at-risk record: nothing to recover`], operations: [] };
  }
  const plan: string[] = [];
  const problems: string[] = [];
  const operations: OperationRow[] = [];
  for (const name of stores) {
    const open = storage.atRisk.list(name).find((r) => r.closedAt === null);
    if (open && !storage.slots.get(open.slot)) {
      // its machine was retired: the unreplicated changes are on that machine's disks, out of the cluster's reach
      const retired = storage.slots.retired(open.machine).find((r) => r.name === open.slot);
      problems.push(`${name}: the old master ${open.slot} was retired with machine ${open.machine}${retired ? ` (replaced by ${retired.replacedBy})` : ''}: what it had not replicated (slotctl store at-risk ${name}) is only on ${open.machine}'s disks under ${retired?.metaPath ?? 'its meta partition'}/quarantine or its sync directory`);
      continue;
    }
    const v = candidate(ctx, name);
    const params = paramsOf(v);
    plan.push(...recoveryPlan(params, name).map((line) => `${name}: ${line}`));
    const why = recoveryProblems(v);
    if (why.length) {
      problems.push(...why.map((p) => `${name}: ${p}`));
      continue;
    }
    if (input.dryRun) continue;
    const id = `${RECOVERY.idPrefix}-${randomUUID().slice(0, 8)}`;
    try {
      storage.operations.create({ id, kind: 'recover', store: name, step: 'preflight', params: { ...params }, epoch: v.store.epoch, reason: `recovery of ${name}: ${params.mailboxes.length} mailbox(es) from ${params.old} (${params.oldMachine}) to ${params.target}` });
      operations.push(storage.operations.get(id)!);
    } catch (err) {
      if (!(err instanceof OperationConflict)) throw err;
      problems.push(`${name}: busy: ${err.message}`);
    }
  }
  if (input.store && problems.length && operations.length === 0 && !input.dryRun && stores.length === 1 && problems[0]!.includes('busy')) {
    throw new ConflictError(problems[0]!, { hint: 'wait for the running operation (slotctl operations list)' });
  }
  return { plan, problems, operations };
}
