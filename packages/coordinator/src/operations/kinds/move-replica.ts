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
import { ALL_MAILBOXES } from '@slotctl/shared';
import type { MachineRow, MailboxCheckRow, MailboxSummaryRow, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import type { KindContext, OperationKind } from '../framework/kind.js';
import { stepAge, until, type Rule } from '../framework/rule.js';
import { seedSlotProblem } from '../seed-limits.js';

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

export interface MoveReplicaView {
  now: number;
  op: OperationRow;
  params: MoveReplicaParams;
  store: StoreRow;
  master: SlotRow | undefined;
  target: SlotRow | undefined;
  masterMachine: MachineRow | undefined;
  targetMachine: MachineRow | undefined;
  connected: ReadonlySet<string>;
  /** The check id of the current comparison ('' before the first). */
  checkId: string;
  /** The epoch the create and the switch wrote (0: not yet). */
  createdEpoch: number;
  switchedEpoch: number;
  /** When the create was written (epoch ms; 0: not yet): the copy's time limit counts from it. */
  copyingSince: number;
  /** In preflight: why no seed slot is free ('' when one is; seed-limits.ts). */
  seedWait: string;
}

export type MoveReplicaRule = Rule<MoveReplicaView, MoveReplicaAction, MoveReplicaStep>;

export const MOVE_REPLICA_DEFAULTS = { timeoutMs: 3_600_000, verifyTimeoutMs: 120_000, recheckMs: 2000, switchTimeoutMs: 60_000, lagMs: 1500 };

const BEFORE_SWITCH: readonly string[] = ['create', 'seed', 'verify'];
const up = (m: MachineRow | undefined, connected: ReadonlySet<string>) => m !== undefined && m.state === 'up' && connected.has(m.name);
const serving = (s: SlotRow | undefined, role: 'MASTER' | 'REPLICA') => s?.observedState === 'SERVING' && s.observedRole === role;
/** A copy's attempts: a failed one (a replica briefly unreachable) is tried again after a pause, up to a bound. */
const COPY_ATTEMPTS = 3;
const COPY_RETRY_MS = 5000;
const copyAttempt = (op: OperationRow, phase: 'seed' | 'catch-up') => Number(op.result[phase === 'seed' ? 'seedAttempt' : 'catchUpAttempt'] ?? 1);
/** The request id of the copy's current attempt (the first seed's is the operation's own id). */
function copyId(op: OperationRow, phase: 'seed' | 'catch-up'): string {
  const n = copyAttempt(op, phase);
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

/** Both summaries of the current comparison, once both arrived. */
function checks(v: MoveReplicaView): { master: MailboxCheckRow; target: MailboxCheckRow } | undefined {
  const m = v.master?.results.check;
  const t = v.target?.results.check;
  if (!v.checkId || m?.op !== v.checkId || t?.op !== v.checkId) return undefined;
  return { master: m, target: t };
}

/**
 * Mailboxes of the master's summary that the new slot had not caught up with when it was summarized (1.5 s or more
 * later): missing, another uniqueid or UIDVALIDITY, or an older last UID or highest modseq. Under a steady load the
 * two never hold the same count at the same instant (measured: 36 comparisons in 72 s before one agreed), but a
 * replica whose mailbox is at or past the master's modseq of a moment before holds everything the master held then
 * — and what came after flows through the replication channel. Delayed-deleted mailboxes are not compared.
 */
export function notCaughtUp(master: readonly MailboxSummaryRow[], target: readonly MailboxSummaryRow[]): string[] {
  const byName = new Map(target.map((m) => [m.name, m]));
  const out: string[] = [];
  for (const m of master) {
    if (!m.exists || m.name.startsWith('DELETED.')) continue;
    const r = byName.get(m.name);
    if (!r?.exists) out.push(`${m.name}: missing on the new slot`);
    else if (r.uniqueid !== m.uniqueid) out.push(`${m.name}: uniqueid ${m.uniqueid} on the master, ${r.uniqueid} on the new slot`);
    else if (r.uidvalidity !== m.uidvalidity) out.push(`${m.name}: UIDVALIDITY ${m.uidvalidity} on the master, ${r.uidvalidity} on the new slot`);
    else if (r.lastUid < m.lastUid || r.highestModseq < m.highestModseq) out.push(`${m.name}: last UID ${r.lastUid}, modseq ${r.highestModseq} on the new slot, behind the master's ${m.lastUid}, ${m.highestModseq}`);
  }
  return out;
}

function differences(v: MoveReplicaView): string[] | undefined {
  const c = checks(v);
  if (!c || c.master.error || c.target.error) return undefined;
  return notCaughtUp(c.master.mailboxes, c.target.mailboxes);
}

const checkError = (v: MoveReplicaView) => {
  const c = checks(v);
  const error = c?.master.error || c?.target.error;
  return error ? `mbexamine: ${error}` : undefined;
};

/** The master's summary of the current comparison arrived, and when the coordinator saw it (0: not yet). */
const masterSummarized = (v: MoveReplicaView) => Boolean(v.checkId) && v.master?.results.check?.op === v.checkId;
const masterSeenAt = (v: MoveReplicaView) => Number(v.op.result.masterSeenAt ?? 0);
const targetAsked = (v: MoveReplicaView) => v.op.result.targetAsked === v.checkId;

const summary = (d: readonly string[]) => `${d.length} difference(s): ${d.slice(0, 5).join('; ')}${d.length > 5 ? '; …' : ''}`;
const mailboxCount = (v: MoveReplicaView) => checks(v)!.master.mailboxes.filter((m) => m.exists && !m.name.startsWith('DELETED.')).length;

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

/** Rows that compare both slots again every 2 s while they differ (mail arriving replicates within a second or two). */
function compareRows(step: 'verify' | 'confirm', onEqual: Pick<MoveReplicaRule, 'to' | 'state' | 'reason' | 'action' | 'doc'>, onFail: Pick<MoveReplicaRule, 'to' | 'state' | 'action'>): MoveReplicaRule[] {
  return [
    { from: step, ...onFail, reason: 'check failed', failure: true, doc: 'mbexamine failed on either slot', when: checkError },
    {
      from: step, to: step, reason: 'master summarized', action: 'note-master', doc: 'the master\'s summary arrived (its time noted)',
      when: (v) => (masterSummarized(v) && masterSeenAt(v) === 0 ? `${v.params.master} summarized ${v.master!.results.check!.mailboxes.length} mailbox(es)` : undefined),
    },
    {
      from: step, to: step, reason: 'new slot asked', action: 'request-target-check', doc: '1.5 s after the master\'s summary: the new slot is summarized (replication is a second behind)',
      when: (v) => (masterSeenAt(v) > 0 && !targetAsked(v) && v.now - masterSeenAt(v) >= MOVE_REPLICA_DEFAULTS.lagMs ? `summarizing ${v.params.target}, ${v.now - masterSeenAt(v)} ms after the master` : undefined),
    },
    {
      from: step, ...onEqual,
      when: (v) => (differences(v)?.length === 0 ? `every one of the master's ${mailboxCount(v)} mailbox(es) is on ${v.params.target} as the master had it a moment before, or newer` : undefined),
    },
    {
      from: step, ...onFail, reason: 'new replica differs', failure: true, doc: 'still differences after 2 min',
      when: (v) => {
        const d = differences(v);
        return d?.length && stepAge(v) > v.params.verifyTimeoutMs ? `after ${Math.round(stepAge(v) / 1000)} s still ${summary(d)}` : undefined;
      },
    },
    {
      from: step, to: step, reason: 'checking again', action: 'request-check', doc: 'differences, and the last check was asked 2 s ago or more',
      when: (v) => {
        const d = differences(v);
        const asked = Number(v.op.result.checkAskedAt ?? 0);
        return d?.length && v.now - asked >= MOVE_REPLICA_DEFAULTS.recheckMs ? `${summary(d)} (mail arriving meanwhile replicates within a second or two)` : undefined;
      },
    },
  ];
}

const ABANDON = { to: 'abandon' as const, action: 'drop-slot' as const, failure: true };
const afterSwitchFailed = { to: 'done' as const, state: 'failed' as const, action: 'finish' as const };

export const MOVE_REPLICA_RULES: readonly MoveReplicaRule[] = [
  // before the switch: a cancel, the time limit, or the store or a machine lost abandon the new slot
  { from: '*', ...ABANDON, failure: false, reason: 'cancelled', doc: 'before the switch: an operator cancel', when: (v) => (BEFORE_SWITCH.includes(v.op.step) && v.op.cancelRequested ? `cancelled at step ${v.op.step}: the new slot ${v.params.target} is abandoned` : undefined) },
  { from: '*', ...ABANDON, reason: 'timed out', doc: 'before the switch: not switched within an hour of the create', when: (v) => (BEFORE_SWITCH.includes(v.op.step) && v.now - (v.copyingSince || Date.parse(v.op.createdAt)) > v.params.timeoutMs ? `not switched ${Math.round(v.params.timeoutMs / 1000)} s after the create (at step ${v.op.step})` : undefined) },
  { from: '*', ...ABANDON, reason: 'store or machine lost', doc: 'before the switch: the store\'s master or replica changed, or the master\'s or the new slot\'s machine is declared down or retired', when: (v) => (BEFORE_SWITCH.includes(v.op.step) ? lost(v) : undefined) },

  { from: 'preflight', to: 'done', state: 'cancelled', reason: 'cancelled', action: 'none', doc: 'cancel (nothing was touched yet)', when: (v) => (v.op.cancelRequested ? 'cancelled before anything was touched' : undefined) },
  {
    from: 'preflight', to: 'done', state: 'refused', reason: 'cannot move the replica', failure: true, action: 'none', doc: 'the store\'s master or replica changed, a machine not up and connected, the target drained, the master not serving',
    when: (v) => {
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
  ...compareRows('verify', { to: 'switch', reason: 'new slot verified', action: 'switch-replica', doc: 'every mailbox of the master\'s summary on the new slot, same uniqueid and UIDVALIDITY, last UID and modseq at least the master\'s' }, ABANDON),
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
  { from: 'catch-up', ...afterSwitchFailed, reason: 'master changed', failure: true, doc: 'the master changed after the switch (a failover)', when: (v) => (v.store.masterSlot !== v.params.master ? `${v.store.name}'s master is ${v.store.masterSlot} now; the catch-up copy did not finish` : undefined) },
  ...compareRows('confirm', { to: 'done', state: 'succeeded', reason: 'moved', action: 'finish', doc: 'the same, on the new replica' }, afterSwitchFailed),
  {
    from: 'abandon', to: 'done', state: (v) => (v.op.cancelRequested ? 'cancelled' : 'failed'), stateDoc: 'failed, or cancelled when a cancel caused it', reason: 'new slot abandoned', action: 'finish', doc: 'the new slot left the cluster',
    when: (v) => (v.target === undefined ? `${v.params.target} left the cluster (its files stay on ${v.params.targetMachine}); ${v.store.name} keeps ${v.store.replicaSlot} as replica${v.op.error ? `: ${v.op.error}` : ''}` : undefined),
  },
];

function moveReplicaView(op: OperationRow, ctx: KindContext): MoveReplicaView | undefined {
  const { storage } = ctx;
  const params = op.params as unknown as MoveReplicaParams;
  const store = op.store ? storage.stores.get(op.store) : undefined;
  if (!store) return undefined;
  const num = (k: string) => Number(op.result[k] ?? 0);
  return {
    now: Date.now(),
    op,
    params,
    store,
    master: storage.slots.get(params.master),
    target: storage.slots.get(params.target),
    masterMachine: storage.machines.get(params.masterMachine),
    targetMachine: storage.machines.get(params.targetMachine),
    connected: ctx.connected(),
    checkId: typeof op.result.checkId === 'string' ? op.result.checkId : '',
    createdEpoch: num('createdEpoch'),
    switchedEpoch: num('switchedEpoch'),
    copyingSince: num('copyingSince'),
    seedWait: op.step === 'preflight' ? seedSlotProblem({ id: op.id, masterMachine: params.masterMachine, targetMachine: params.targetMachine }, storage.operations.running(), ctx.seedLimits) : '',
  };
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
      storage.transaction(() => {
        if (storage.slots.get(p.target)) return; // created before a coordinator restart
        const epoch = storage.stores.addMovingReplica({ store: v.store.name, machine: p.targetMachine, slot: p.target, ip: p.ip, dataPath: p.dataPath, metaPath: p.metaPath, expectEpoch: v.store.epoch, op: v.op.id, reason: `replica move ${v.op.id}: ${p.target} on ${p.targetMachine} added beside ${p.oldReplica}; the master replicates to both until the switch` });
        storage.operations.mergeResult(v.op.id, { createdEpoch: epoch, copyingSince: Date.now() });
      });
      ctx.push(machines);
      return;
    case 'request-seed':
    case 'request-catch-up': {
      const phase = action === 'request-seed' ? 'seed' : 'catch-up';
      storage.requests.put(p.master, { kind: 'seed', id: copyId(v.op, phase) });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'retry-seed':
    case 'retry-catch-up': {
      const phase = action === 'retry-seed' ? 'seed' : 'catch-up';
      const next = { ...v.op, result: { ...v.op.result, [phase === 'seed' ? 'seedAttempt' : 'catchUpAttempt']: copyAttempt(v.op, phase) + 1 } };
      storage.transaction(() => {
        storage.operations.mergeResult(v.op.id, { [phase === 'seed' ? 'seedAttempt' : 'catchUpAttempt']: copyAttempt(v.op, phase) + 1 });
        storage.requests.put(p.master, { kind: 'seed', id: copyId(next, phase) });
      });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'request-check': {
      // the master first; the new slot once the master's summary is in and replication had time to carry it
      const attempt = Number(v.op.result.checkAttempt ?? 0) + 1;
      const checkId = `${v.op.id}.${attempt}`;
      storage.transaction(() => {
        storage.requests.put(p.master, { kind: 'check', id: checkId, mailboxes: [ALL_MAILBOXES] });
        storage.operations.mergeResult(v.op.id, { checkAttempt: attempt, checkId, checkAskedAt: Date.now(), masterSeenAt: 0, targetAsked: '' });
      });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'note-master':
      storage.operations.mergeResult(v.op.id, { masterSeenAt: v.now });
      return;
    case 'request-target-check':
      storage.transaction(() => {
        storage.requests.put(p.target, { kind: 'check', id: v.checkId, mailboxes: [ALL_MAILBOXES] });
        storage.operations.mergeResult(v.op.id, { targetAsked: v.checkId });
      });
      ctx.push([p.targetMachine]);
      return;
    case 'switch-replica':
      storage.transaction(() => {
        withdraw();
        // only the store the move began on: a failover meanwhile (a restart between the record and this) abandons
        if (v.store.replicaSlot === p.target) return;
        if (v.store.masterSlot !== p.master || v.store.replicaSlot !== p.oldReplica) return;
        const epoch = storage.stores.switchToMovedReplica({ store: v.store.name, slot: p.target, expectEpoch: v.store.epoch, op: v.op.id, reason: `replica move ${v.op.id}: ${p.target} on ${p.targetMachine} is the replica; ${p.oldReplica} on ${p.oldMachine} retired (its files stay)` });
        storage.operations.mergeResult(v.op.id, { switchedEpoch: epoch });
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
  const left = `, ${until(v.op.createdAt, p.timeoutMs)}`;
  const t = v.target;
  switch (v.op.step) {
    case 'preflight':
      return v.seedWait;
    case 'create':
      return `${p.target} to serve as replica at epoch ${v.createdEpoch || v.store.epoch} and ${p.master} to apply it (now ${t ? `${t.observedState} as ${t.observedRole || 'nothing'} at ${t.epochApplied}` : 'not created'}, ${p.master} at ${v.master?.epochApplied ?? '?'})${left}`;
    case 'seed': {
      const r = seedResult(v, 'seed');
      if (r && !r.ok && !r.last) return `attempt ${copyAttempt(v.op, 'seed')} failed (${r.text}): trying again ${COPY_RETRY_MS / 1000} s after it`;
      return `${p.master} to copy every user to ${p.target} (sync_client -u${copyAttempt(v.op, 'seed') > 1 ? `, attempt ${copyAttempt(v.op, 'seed')}` : ''})${left}`;
    }
    case 'catch-up':
      return `${p.master} to copy every user to ${p.target} once more (what sessions begun before the second channel changed)`;
    case 'verify':
    case 'confirm': {
      const d = differences(v);
      if (!masterSummarized(v)) return `${p.master}'s mailbox summary (check ${v.checkId || 'not asked yet'})`;
      if (!targetAsked(v)) return `${MOVE_REPLICA_DEFAULTS.lagMs} ms of replication before ${p.target} is summarized`;
      if (!d) return `${p.target}'s mailbox summary (check ${v.checkId})`;
      return `${summary(d)}: checking again every ${MOVE_REPLICA_DEFAULTS.recheckMs / 1000} s, ${until(v.op.stepSince, p.verifyTimeoutMs)}`;
    }
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
    'request-check': 'ask the master to summarize every mailbox (mbexamine), as a new comparison',
    'note-master': 'note when the master\'s summary arrived',
    'request-target-check': 'ask the new slot to summarize every mailbox',
    'switch-replica': 'one transaction: the new slot is the replica (no longer seeding), the old one moves to the retired slots (its files stay), epoch + 1',
    'request-catch-up': 'ask the master to copy every user to the new replica once more',
    'retry-seed': 'ask the master to copy every user again (a new attempt)',
    'retry-catch-up': 'ask the master for the catch-up copy again (a new attempt)',
    finish: 'clear the requests',
    'drop-slot': 'the new slot leaves the cluster (its files stay), epoch + 1; the requests cleared',
  },
  view: moveReplicaView,
  actions: {
    none: () => undefined,
    'create-slot': (v, ctx) => act('create-slot', v, ctx),
    'request-seed': (v, ctx) => act('request-seed', v, ctx),
    'request-check': (v, ctx) => act('request-check', v, ctx),
    'note-master': (v, ctx) => act('note-master', v, ctx),
    'request-target-check': (v, ctx) => act('request-target-check', v, ctx),
    'switch-replica': (v, ctx) => act('switch-replica', v, ctx),
    'request-catch-up': (v, ctx) => act('request-catch-up', v, ctx),
    'retry-seed': (v, ctx) => act('retry-seed', v, ctx),
    'retry-catch-up': (v, ctx) => act('retry-catch-up', v, ctx),
    finish: (v, ctx) => act('finish', v, ctx),
    'drop-slot': (v, ctx) => act('drop-slot', v, ctx),
  },
  gone: () => ({ to: 'done', state: 'failed', reason: 'store removed from the cluster meanwhile', error: 'the store was removed' }),
  epoch: (v) => v.store.epoch,
  crashName: (step) => `move-${step}`,
  cancelRefusal: (op) =>
    ['preflight', ...BEFORE_SWITCH].includes(op.step)
      ? undefined
      : { message: `operation ${op.id} is past its switch (at ${op.step}): the new slot is the store's replica`, hint: `wait for it to end (slotctl operations show ${op.id} --wait); to move the replica back, start another move` },
  waiting: moveReplicaWaiting,
};
