// The replica-move kind: one store's replica moved to another live machine, as a table, with its view and actions
// (`slotctl store move-replica STORE --to M`; what it checks before it starts is in move-replica-plan.ts).
//
//   preflight ─► create ─► seed ─► verify ─► switch ─► catch-up ─► confirm ─► done
//                  └──────────┴────────┴──► abandon ─► done (failed or cancelled; nothing switched)
//
// The store is never down to one copy: until the switch the old replica keeps replicating and stays the store's
// replica (failover promotes it, never the new slot, which is marked seeding). create: one transaction adds the new
// slot beside it (epoch + 1): the master logs every change twice from then on, to its replica and to the new slot (a
// second Cyrus sync log channel, reloaded without a restart). seed: the master copies every user to the new slot.
// verify: every mailbox of the master's summary on the new slot, summarized 1.5 s later, as new or newer (uniqueid,
// UIDVALIDITY, last UID, modseq). switch: one
// transaction makes the new slot the replica (epoch + 1; the old slot's row goes to the retired slots, its agent stops
// it and lets its address go, its files stay). catch-up: every user copied once more, for what a session begun before
// the second channel changed; confirm: compared again. Before the switch a cancel or a failure abandons the new slot;
// after it the move only goes forward.
import type { OperationRow, SlotRow } from '../../db/rows.js';
import { dispatchTo, failedAsRemoved, type KindContext, type OperationKind } from '../framework/kind.js';
import { stepAge, until, type Rule } from '../framework/rule.js';
import { COMPARE_ACTION_DOCS, compareAction, compareRows, compareWaiting, copyView, lastProgressAt, notCaughtUp, seedProgressText, up, type CopyView } from './copy-compare.js';

export { notCaughtUp };

export type MoveReplicaStep = 'preflight' | 'create' | 'seed' | 'verify' | 'switch' | 'catch-up' | 'confirm' | 'abandon' | 'done';
export type MoveReplicaAction = 'none' | 'create-slot' | 'request-seed' | 'retry-seed' | 'request-check' | 'note-master' | 'request-target-check' | 'switch-replica' | 'request-catch-up' | 'retry-catch-up' | 'finish' | 'drop-slot';

export interface MoveReplicaParams {
  master: string;
  masterMachine: string;
  /** The store's replica when the move began, and its machine. */
  oldReplica: string;
  oldMachine: string;
  /** The new replica slot, its machine, address and partitions. */
  target: string;
  targetMachine: string;
  ip: string;
  dataPath: string;
  metaPath: string;
  timeoutMs: number;
  verifyTimeoutMs: number;
}

export interface MoveReplicaView extends CopyView<MoveReplicaParams> {
  /** The epoch the create and the switch wrote (0: not yet). */
  createdEpoch: number;
  switchedEpoch: number;
  /** When the create was written (epoch ms; 0: not yet): the copy's time limit counts from it. */
  copyingSince: number;
  /** When the switch was written (epoch ms; 0: not yet). */
  switchedAt: number;
}

export type MoveReplicaRule = Rule<MoveReplicaView, MoveReplicaAction, MoveReplicaStep>;

export const MOVE_REPLICA_DEFAULTS = { timeoutMs: 3_600_000, verifyTimeoutMs: 120_000, switchTimeoutMs: 60_000 };

export const BEFORE_SWITCH: readonly string[] = ['create', 'seed', 'verify'];
const AFTER_SWITCH: readonly string[] = ['switch', 'catch-up', 'confirm'];
const serving = (s: SlotRow | undefined, role: 'MASTER' | 'REPLICA') => s?.observedState === 'SERVING' && s.observedRole === role;
/** A copy's attempts: a failed one (a replica briefly unreachable) is tried again after a pause, up to a bound. */
const COPY_ATTEMPTS = 3;
const COPY_RETRY_MS = 5000;
const ATTEMPT_KEY = { seed: 'seedAttempt', 'catch-up': 'catchUpAttempt' } as const;
const copyAttempt = (op: OperationRow, phase: 'seed' | 'catch-up') => Number(op.result[ATTEMPT_KEY[phase]] ?? 1);
/** The request id of a copy's attempt (the first seed's is the operation's own id). */
function copyId(op: OperationRow, phase: 'seed' | 'catch-up', n = copyAttempt(op, phase)): string {
  if (phase === 'seed') return n === 1 ? op.id : `${op.id}.seed-${n}`;
  return n === 1 ? `${op.id}.catch-up` : `${op.id}.catch-up-${n}`;
}

/** What stops a move from starting, or from going on before its switch; [] when nothing does. */
export function moveProblems(v: Pick<MoveReplicaView, 'params' | 'store' | 'master' | 'masterMachine' | 'targetMachine' | 'connected'>): string[] {
  const p = v.params;
  const out: string[] = [];
  if (v.store.masterSlot !== p.master) out.push(`store ${v.store.name}'s master is ${v.store.masterSlot} now, not ${p.master}`);
  if (v.store.replicaSlot !== p.oldReplica) out.push(`store ${v.store.name}'s replica is ${v.store.replicaSlot} now, not ${p.oldReplica}`);
  if (!up(v.masterMachine, v.connected)) out.push(`machine ${p.masterMachine} (master) is not up with its agent connected`);
  if (!up(v.targetMachine, v.connected)) out.push(`machine ${p.targetMachine} (new replica) is not up with its agent connected`);
  else if (v.targetMachine!.drained) out.push(`machine ${p.targetMachine} is drained (being emptied): undrain it first (slotctl machine undrain ${p.targetMachine})`);
  if (v.master && !serving(v.master, 'MASTER')) out.push(`slot ${p.master} is not serving as master (${v.master.observedState} ${v.master.observedRole || '-'})`);
  return out;
}

/** A reason to give up before the switch (the machine of a slot declared down, the store changed): abandon. */
function lost(v: MoveReplicaView): string | undefined {
  const p = v.params;
  if (v.store.masterSlot !== p.master) return `store ${v.store.name}'s master changed to ${v.store.masterSlot} (a failover or a switchover)`;
  if (v.store.replicaSlot !== p.oldReplica) return `store ${v.store.name}'s replica changed to ${v.store.replicaSlot}`;
  for (const m of [v.masterMachine, v.targetMachine]) if (!m || m.state === 'down' || m.retiredAt) return `machine ${m?.name ?? '?'} is ${m ? (m.retiredAt ? 'retired' : 'down') : 'gone'}`;
  return undefined;
}

function seedResult(v: MoveReplicaView, phase: 'seed' | 'catch-up'): { ok: boolean; text: string; finishedAt: number; last: boolean } | undefined {
  const r = v.master?.results.seed;
  if (r?.op !== copyId(v.op, phase)) return undefined;
  const n = copyAttempt(v.op, phase);
  const last = n >= COPY_ATTEMPTS;
  if (!r.ok) return { ok: false, last, finishedAt: Date.parse(r.finishedAt) || 0, text: `${r.error || 'no detail'}${r.failed.length ? ` (not copied: ${r.failed.slice(0, 10).join(', ')})` : ''} (attempt ${n} of ${COPY_ATTEMPTS})` };
  return { ok: true, last, finishedAt: Date.parse(r.finishedAt) || 0, text: `${r.users} user(s), ${r.mailboxes} mailbox(es), ${r.messages} message(s) in ${r.ms} ms` };
}

/** A failed copy tried again: after a pause, while attempts are left. */
function retryRow(phase: 'seed' | 'catch-up'): MoveReplicaRule {
  return {
    from: phase, to: phase, reason: `${phase === 'seed' ? 'initial sync' : 'catch-up copy'} failed, trying again`, action: phase === 'seed' ? 'retry-seed' : 'retry-catch-up',
    doc: `the copy failed and attempts are left (${COPY_ATTEMPTS} in all), ${COPY_RETRY_MS / 1000} s after the failure`,
    when: (v) => {
      const r = seedResult(v, phase);
      return r && !r.ok && !r.last && v.now - r.finishedAt >= COPY_RETRY_MS ? r.text : undefined;
    },
  };
}

const ABANDON = { to: 'abandon' as const, action: 'drop-slot' as const, failure: true };
const afterSwitchFailed = { to: 'done' as const, state: 'failed' as const, action: 'finish' as const };

export const MOVE_REPLICA_RULES: readonly MoveReplicaRule[] = [
  // before the switch: a cancel, the time limit, or the store or a machine lost abandon the new slot
  { from: '*', ...ABANDON, failure: false, reason: 'cancelled', doc: 'before the switch: an operator cancel', when: (v) => (BEFORE_SWITCH.includes(v.op.step) && v.op.cancelRequested ? `cancelled at step ${v.op.step}: the new slot ${v.params.target} is abandoned` : undefined) },
  { from: '*', ...ABANDON, reason: 'timed out', doc: 'before the switch: an hour without progress (from the create, or the copy\'s last progress report)', when: (v) => (BEFORE_SWITCH.includes(v.op.step) && v.now - Math.max(v.copyingSince || Date.parse(v.op.createdAt), lastProgressAt(v.master, v.op.id)) > v.params.timeoutMs ? `not switched, and no progress for ${Math.round(v.params.timeoutMs / 1000)} s (at step ${v.op.step})` : undefined) },
  { from: '*', ...ABANDON, reason: 'store or machine lost', doc: 'before the switch: the store\'s master or replica changed, or the master\'s or the new slot\'s machine is declared down or retired', when: (v) => (BEFORE_SWITCH.includes(v.op.step) ? lost(v) : undefined) },
  // after the switch the new slot is the replica: a failover of the store must not wait for the move (it waits for
  // any operation on the store), and nothing may keep the move running for ever
  {
    from: '*', to: 'done', state: 'failed', action: 'finish', failure: true, reason: 'master lost after the switch', doc: 'after the switch: the master\'s machine is declared down, or the store\'s master changed (a failover takes over)',
    when: (v) => (AFTER_SWITCH.includes(v.op.step) && v.switchedEpoch > 0 && (v.store.masterSlot !== v.params.master || v.masterMachine?.state === 'down') ? `${v.store.name}'s master ${v.store.masterSlot === v.params.master ? `machine ${v.params.masterMachine} is down` : `is ${v.store.masterSlot} now`}: the move ends after its switch, its catch-up copy not finished` : undefined),
  },
  {
    from: '*', to: 'done', state: 'failed', action: 'finish', failure: true, reason: 'timed out after the switch', doc: 'after the switch: not done within an hour of it',
    when: (v) => (AFTER_SWITCH.includes(v.op.step) && v.switchedAt > 0 && v.now - v.switchedAt > v.params.timeoutMs ? `not done ${Math.round(v.params.timeoutMs / 1000)} s after the switch (at step ${v.op.step}); ${v.params.target} is the replica` : undefined),
  },
  { from: 'create', ...ABANDON, reason: 'new slot not added', doc: 'the create could not be written (its address or paths taken meanwhile)', when: (v) => (typeof v.op.result.createError === 'string' && v.target === undefined ? v.op.result.createError : undefined) },

  { from: 'preflight', to: 'done', state: 'cancelled', reason: 'cancelled', action: 'none', doc: 'cancel (nothing was touched yet)', when: (v) => (v.op.cancelRequested ? 'cancelled before anything was touched' : undefined) },
  {
    from: 'preflight', to: 'done', state: 'refused', reason: 'cannot move the replica', failure: true, action: 'none', doc: 'the store\'s master or replica changed, a machine not up and connected, the target drained, the master not serving (judged once a seed slot is free: a wait for one refuses nothing)',
    when: (v) => {
      if (v.seedWait) return undefined;
      const problems = moveProblems(v);
      return problems.length ? problems.join('; ') : undefined;
    },
  },
  { from: 'preflight', to: 'create', reason: 'new replica slot added', action: 'create-slot', doc: 'otherwise, once a seed slot is free (`--max-seeds` cluster-wide, `--max-seeds-per-machine` for the master\'s and the target\'s machine)', when: (v) => (v.seedWait ? undefined : `${v.params.target} (${v.params.ip}) on ${v.params.targetMachine} beside ${v.params.oldReplica} (${v.params.oldMachine}), which keeps replicating`) },
  {
    from: 'create', to: 'seed', reason: 'new slot serving', action: 'request-seed', doc: 'the new slot serves as replica and the master applied the epoch of the create (it replicates to both)',
    when: (v) =>
      v.createdEpoch > 0 && serving(v.target, 'REPLICA') && v.target!.epochApplied >= v.createdEpoch && serving(v.master, 'MASTER') && v.master!.epochApplied >= v.createdEpoch
        ? `${v.params.target} serves as replica and ${v.params.master} replicates to it too (epoch ${v.createdEpoch}); copying every user`
        : undefined,
  },
  { from: 'seed', ...ABANDON, reason: 'initial sync failed', doc: `the seed failed ${COPY_ATTEMPTS} times (the users not copied named)`, when: (v) => { const r = seedResult(v, 'seed'); return r && !r.ok && r.last ? r.text : undefined; } },
  retryRow('seed'),
  { from: 'seed', to: 'verify', reason: 'initial sync done', action: 'request-check', doc: 'the seed succeeded', when: (v) => { const r = seedResult(v, 'seed'); return r?.ok ? `${r.text}; comparing every mailbox on both slots` : undefined; } },
  ...compareRows<MoveReplicaView, MoveReplicaAction, MoveReplicaStep>('verify', { to: 'switch', reason: 'new slot verified', action: 'switch-replica', doc: 'every mailbox of the master\'s summary on the new slot, same uniqueid and UIDVALIDITY, last UID and modseq at least the master\'s' }, ABANDON),
  {
    from: 'switch', to: 'catch-up', reason: 'switched', action: 'request-catch-up', doc: 'the new slot is the store\'s replica and the master applied it',
    when: (v) =>
      v.store.replicaSlot === v.params.target && v.switchedEpoch > 0 && (v.master?.epochApplied ?? 0) >= v.switchedEpoch && serving(v.master, 'MASTER')
        ? `${v.params.target} is ${v.store.name}'s replica at epoch ${v.switchedEpoch}, ${v.params.oldReplica} retired; copying every user once more`
        : undefined,
  },
  { from: 'switch', ...ABANDON, reason: 'switch did not happen', doc: 'the store changed before the switch could be written', when: (v) => (v.store.replicaSlot !== v.params.target && v.switchedEpoch === 0 ? lost(v) ?? 'the store changed before the switch' : undefined) },
  {
    from: 'switch', ...afterSwitchFailed, reason: 'master did not apply the switch', failure: true, doc: '60 s without the master applying the switch (forward only: the new slot is the replica)',
    when: (v) => (stepAge(v) > MOVE_REPLICA_DEFAULTS.switchTimeoutMs ? `${v.params.master} did not apply epoch ${v.switchedEpoch} within ${MOVE_REPLICA_DEFAULTS.switchTimeoutMs / 1000} s; ${v.params.target} is the replica, the catch-up copy did not run` : undefined),
  },
  { from: 'catch-up', to: 'confirm', reason: 'catch-up copy done', action: 'request-check', doc: 'the second copy of every user succeeded', when: (v) => { const r = seedResult(v, 'catch-up'); return r?.ok ? `${r.text}; comparing every mailbox again` : undefined; } },
  { from: 'catch-up', ...afterSwitchFailed, reason: 'catch-up copy failed', failure: true, doc: `the second copy failed ${COPY_ATTEMPTS} times (forward only)`, when: (v) => { const r = seedResult(v, 'catch-up'); return r && !r.ok && r.last ? `${v.params.target} is the replica; the catch-up copy failed: ${r.text}` : undefined; } },
  retryRow('catch-up'),
  ...compareRows<MoveReplicaView, MoveReplicaAction, MoveReplicaStep>('confirm', { to: 'done', state: 'succeeded', reason: 'moved', action: 'finish', doc: 'the same, on the new replica' }, afterSwitchFailed),
  {
    from: 'abandon', to: 'done', state: (v) => (v.op.cancelRequested ? 'cancelled' : 'failed'), stateDoc: 'failed, or cancelled when a cancel caused it', reason: 'new slot abandoned', action: 'finish', doc: 'the new slot left the cluster',
    when: (v) => (v.target === undefined ? `${v.params.target} left the cluster (its files stay on ${v.params.targetMachine}); ${v.store.name} keeps ${v.store.replicaSlot} as replica${v.op.error ? `: ${v.op.error}` : ''}` : undefined),
  },
];

function moveReplicaView(op: OperationRow, ctx: KindContext): MoveReplicaView | undefined {
  const base = copyView<MoveReplicaParams>(op, ctx);
  const num = (k: string) => Number(op.result[k] ?? 0);
  return base && { ...base, createdEpoch: num('createdEpoch'), switchedEpoch: num('switchedEpoch'), copyingSince: num('copyingSince'), switchedAt: num('switchedAt') };
}

function act(action: MoveReplicaAction, v: MoveReplicaView, ctx: KindContext): void {
  const { storage } = ctx;
  const p = v.params;
  const machines = [p.masterMachine, p.oldMachine, p.targetMachine];
  const withdraw = () => {
    for (const slot of [p.master, p.target]) {
      if (!storage.slots.get(slot)) continue;
      if (slot === p.master) storage.requests.withdraw(slot, 'seed');
      storage.requests.withdraw(slot, 'check');
    }
  };
  switch (action) {
    case 'create-slot':
      try {
        storage.transaction(() => {
          if (storage.slots.get(p.target)) return; // created before a coordinator restart
          const epoch = storage.stores.addMovingReplica({ store: v.store.name, machine: p.targetMachine, slot: p.target, ip: p.ip, dataPath: p.dataPath, metaPath: p.metaPath, expectEpoch: v.store.epoch, op: v.op.id, reason: `replica move ${v.op.id}: ${p.target} on ${p.targetMachine} added beside ${p.oldReplica}; the master replicates to both until the switch` });
          storage.operations.mergeResult(v.op.id, { createdEpoch: epoch, copyingSince: Date.now() });
        });
      } catch (err) {
        // its address or paths taken since the request (a cluster apply, another move): the move gives up, and a
        // restarted coordinator that runs this action again must not fail to start on it
        storage.operations.mergeResult(v.op.id, { createError: `${p.target} could not be added: ${(err as Error).message}` });
      }
      ctx.push(machines);
      return;
    case 'request-seed':
    case 'request-catch-up': {
      const phase = action === 'request-seed' ? 'seed' : 'catch-up';
      storage.requests.put(p.master, { kind: 'seed', id: copyId(v.op, phase), fullSpeed: phase === 'catch-up' });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'retry-seed':
    case 'retry-catch-up': {
      const phase = action === 'retry-seed' ? 'seed' : 'catch-up';
      const attempt = copyAttempt(v.op, phase) + 1;
      storage.transaction(() => {
        storage.operations.mergeResult(v.op.id, { [ATTEMPT_KEY[phase]]: attempt });
        storage.requests.put(p.master, { kind: 'seed', id: copyId(v.op, phase, attempt), fullSpeed: phase === 'catch-up' });
      });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'request-check':
    case 'note-master':
    case 'request-target-check':
      return compareAction(action, v, ctx);
    case 'switch-replica':
      storage.transaction(() => {
        withdraw();
        // only the store the move began on: a failover meanwhile (a restart between the record and this) abandons
        if (v.store.replicaSlot === p.target) return;
        if (v.store.masterSlot !== p.master || v.store.replicaSlot !== p.oldReplica) return;
        const epoch = storage.stores.switchToMovedReplica({ store: v.store.name, slot: p.target, expectEpoch: v.store.epoch, op: v.op.id, reason: `replica move ${v.op.id}: ${p.target} on ${p.targetMachine} is the replica; ${p.oldReplica} on ${p.oldMachine} retired (its files stay)` });
        storage.operations.mergeResult(v.op.id, { switchedEpoch: epoch, switchedAt: Date.now() });
      });
      ctx.push(machines);
      return;
    case 'drop-slot':
      storage.transaction(() => {
        withdraw();
        storage.stores.dropMovingReplica({ store: v.store.name, slot: p.target, op: v.op.id, reason: `replica move ${v.op.id} abandoned: ${p.target} on ${p.targetMachine} leaves the cluster (its files stay); ${p.oldReplica} stays the replica` });
      });
      ctx.push(machines);
      return;
    case 'finish':
      storage.transaction(withdraw);
      ctx.push(machines);
      return;
    default:
      return;
  }
}

export function moveReplicaWaiting(v: MoveReplicaView): string {
  const p = v.params;
  // the time limit counts from the create, then from each progress report of a copy
  const left = `, ${until(new Date(Math.max(v.copyingSince || Date.parse(v.op.createdAt), lastProgressAt(v.master, v.op.id))).toISOString(), p.timeoutMs)} without progress`;
  const t = v.target;
  switch (v.op.step) {
    case 'preflight':
      return v.seedWait;
    case 'create':
      return `${p.target} to serve as replica at epoch ${v.createdEpoch || v.store.epoch} and ${p.master} to apply it (now ${t ? `${t.observedState} as ${t.observedRole || 'nothing'} at ${t.epochApplied}` : 'not created'}, ${p.master} at ${v.master?.epochApplied ?? '?'})${left}`;
    case 'seed': {
      const r = seedResult(v, 'seed');
      if (r && !r.ok && !r.last) return `attempt ${copyAttempt(v.op, 'seed')} failed (${r.text}): trying again ${COPY_RETRY_MS / 1000} s after it`;
      return `${p.master} to copy every user to ${p.target} (sync_client -u${copyAttempt(v.op, 'seed') > 1 ? `, attempt ${copyAttempt(v.op, 'seed')}` : ''})${seedProgressText(v.master, copyId(v.op, 'seed'))}${left}`;
    }
    case 'catch-up':
      return `${p.master} to copy every user to ${p.target} once more (what sessions begun before the second channel changed)${seedProgressText(v.master, copyId(v.op, 'catch-up'))}`;
    case 'verify':
    case 'confirm':
      return compareWaiting(v);
    case 'switch':
      return `${p.master} to apply epoch ${v.switchedEpoch} (replicating to ${p.target} only), ${until(v.op.stepSince, MOVE_REPLICA_DEFAULTS.switchTimeoutMs)}`;
    case 'abandon':
      return `${p.target} to leave the cluster`;
    default:
      return '';
  }
}

export const MOVE_REPLICA: OperationKind<MoveReplicaView, MoveReplicaAction> = {
  name: 'move-replica',
  idPrefix: 'mv',
  rules: MOVE_REPLICA_RULES,
  actionDocs: {
    'create-slot': 'one transaction: the new slot added to the store beside its replica, marked seeding, epoch + 1 (the master replicates to both)',
    'request-seed': 'ask the master to copy every user to the new slot (sync_client -u, 50 per call)',
    ...COMPARE_ACTION_DOCS,
    'switch-replica': 'one transaction: the new slot is the replica (no longer seeding), the old one moves to the retired slots (its files stay), epoch + 1',
    'request-catch-up': 'ask the master to copy every user to the new replica once more',
    'retry-seed': 'ask the master to copy every user again (a new attempt)',
    'retry-catch-up': 'ask the master for the catch-up copy again (a new attempt)',
    finish: 'clear the requests',
    'drop-slot': 'the new slot leaves the cluster (its files stay), epoch + 1; the requests cleared',
  },
  view: moveReplicaView,
  actions: { none: () => undefined, ...dispatchTo<MoveReplicaView, Exclude<MoveReplicaAction, 'none'>>(['create-slot', 'request-seed', 'request-check', 'note-master', 'request-target-check', 'switch-replica', 'request-catch-up', 'retry-seed', 'retry-catch-up', 'finish', 'drop-slot'], act) },

  gone: failedAsRemoved('store removed from the cluster meanwhile', 'the store was removed'),
  epoch: (v) => v.store.epoch,
  crashName: (step) => `move-${step}`,
  cancelRefusal: (op) =>
    ['preflight', ...BEFORE_SWITCH].includes(op.step)
      ? undefined
      : { message: `operation ${op.id} is past its switch (at ${op.step}): the new slot is the store's replica`, hint: `wait for it to end (slotctl operations show ${op.id} --wait); to move the replica back, start another move` },
  waiting: moveReplicaWaiting,
};
