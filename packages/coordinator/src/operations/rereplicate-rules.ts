// Pure: re-replication of one store whose replica was on a machine retired for good, as a table.
//
//   preflight ─► create ─► seed ─► verify ─► done
//
// create: one transaction replaces the store's replica slot by a new slot on the chosen peer (same IP and paths,
// epoch + 1; the old slot's row moves to retired_slots, its files stay on the retired machine) and marks the new
// slot `seeding`: a replica that has not been verified to hold everything is never promoted (failover and
// switchover refuse it). seed: the master copies every user to it (sync_client -u). verify: every mailbox of the
// master exists on the new replica with the same uniqueid and message count (mbexamine on both), re-checked every
// 2 s while mail keeps arriving, up to a bound. done: the seeding mark is cleared; the store is whole again.
import type { MachineRow, MailboxSummaryRow, OperationRow, OperationState, SlotRow, StoreRow } from '../db/rows.js';
import { firstMatching } from './rule-table.js';

export type ReReplicationStep = 'preflight' | 'create' | 'seed' | 'verify' | 'done';
export type ReReplicationAction = 'none' | 'create-slot' | 'request-seed' | 'request-check' | 'finish' | 'end-failed';

export interface ReReplicationParams {
  master: string;
  masterMachine: string;
  /** The slot being replaced, on the retired machine. */
  oldReplica: string;
  oldMachine: string;
  /** The new replica slot and its machine. */
  target: string;
  targetMachine: string;
  /** Its partitions on the new machine (the old ones' places under the disks of the same name). */
  dataPath: string;
  metaPath: string;
  timeoutMs: number;
  verifyTimeoutMs: number;
}

export interface ReReplicationView {
  now: number;
  op: OperationRow;
  params: ReReplicationParams;
  store: StoreRow;
  master: SlotRow | undefined;
  /** The new replica slot, once created. */
  target: SlotRow | undefined;
  masterMachine: MachineRow | undefined;
  targetMachine: MachineRow | undefined;
  connected: ReadonlySet<string>;
  /** The check id of the current verification attempt ('' before the first). */
  checkId: string;
}

export interface ReReplicationRule {
  from: ReReplicationStep | '*';
  to: ReReplicationStep;
  state?: OperationState;
  reason: string;
  failure?: boolean;
  when: (v: ReReplicationView) => string | undefined;
  action: ReReplicationAction;
}

export const RE_REPLICATION_DEFAULTS = { timeoutMs: 3_600_000, verifyTimeoutMs: 120_000, recheckMs: 2000 };

const up = (m: MachineRow | undefined, connected: ReadonlySet<string>) => m !== undefined && m.state === 'up' && connected.has(m.name);

export function reReplicationProblems(v: Omit<ReReplicationView, 'now' | 'op' | 'checkId'>): string[] {
  const p = v.params;
  const problems: string[] = [];
  const created = v.store.replicaSlot === p.target;
  if (!created && v.store.replicaSlot !== p.oldReplica) problems.push(`store ${v.store.name}'s replica is ${v.store.replicaSlot} now, not ${p.oldReplica}: nothing to replace`);
  if (v.store.masterSlot !== p.master) problems.push(`store ${v.store.name}'s master is ${v.store.masterSlot} now, not ${p.master}`);
  if (!up(v.masterMachine, v.connected)) problems.push(`machine ${p.masterMachine} (master) is not up with its agent connected`);
  if (!up(v.targetMachine, v.connected)) problems.push(`machine ${p.targetMachine} (new replica) is not up with its agent connected`);
  else if (v.targetMachine!.retiredAt) problems.push(`machine ${p.targetMachine} is retired`);
  if (p.targetMachine === p.masterMachine) problems.push(`the new replica cannot be on the master's machine ${p.masterMachine}`);
  if (v.master && (v.master.observedRole !== 'MASTER' || v.master.observedState !== 'SERVING')) problems.push(`slot ${p.master} is not serving as master (${v.master.observedState} ${v.master.observedRole || '-'})`);
  return problems;
}

/** Mailboxes of the master that the replica lacks or holds differently (delayed-deleted ones are not compared). */
export function seedDifferences(master: readonly MailboxSummaryRow[], replica: readonly MailboxSummaryRow[]): string[] {
  const byName = new Map(replica.map((m) => [m.name, m]));
  const out: string[] = [];
  for (const m of master) {
    if (!m.exists || m.name.startsWith('DELETED.')) continue;
    const r = byName.get(m.name);
    if (!r?.exists) out.push(`${m.name}: missing on the new replica`);
    else if (r.uniqueid !== m.uniqueid) out.push(`${m.name}: uniqueid ${m.uniqueid} on the master, ${r.uniqueid} on the new replica`);
    else if (r.messages !== m.messages) out.push(`${m.name}: ${m.messages} message(s) on the master, ${r.messages} on the new replica`);
  }
  return out;
}

function checks(v: ReReplicationView): { master: SlotRow['checkResult']; replica: SlotRow['checkResult'] } | undefined {
  const m = v.master?.checkResult;
  const r = v.target?.checkResult;
  if (!v.checkId || m?.op !== v.checkId || r?.op !== v.checkId) return undefined;
  return { master: m, replica: r };
}

function differences(v: ReReplicationView): string[] | undefined {
  const c = checks(v);
  if (!c || c.master!.error || c.replica!.error) return undefined;
  return seedDifferences(c.master!.mailboxes, c.replica!.mailboxes);
}

const stepAge = (v: ReReplicationView) => v.now - Date.parse(v.op.stepSince || v.op.updatedAt);
const summary = (d: readonly string[]) => `${d.length} difference(s): ${d.slice(0, 5).join('; ')}${d.length > 5 ? '; …' : ''}`;

export const RE_REPLICATION_RULES: readonly ReReplicationRule[] = [
  {
    from: '*', to: 'done', state: 'failed', reason: 'timed out', failure: true, action: 'end-failed',
    when: (v) => (v.now - Date.parse(v.op.createdAt) > v.params.timeoutMs ? `not done after ${Math.round(v.params.timeoutMs / 1000)} s (at step ${v.op.step}); the new replica stays marked seeding` : undefined),
  },
  {
    from: 'preflight', to: 'done', state: 'refused', reason: 'cannot re-replicate', failure: true, action: 'none',
    when: (v) => {
      const problems = reReplicationProblems(v);
      return problems.length ? problems.join('; ') : undefined;
    },
  },
  { from: 'preflight', to: 'create', reason: 'new replica slot created', action: 'create-slot', when: (v) => `${v.params.target} on ${v.params.targetMachine} replaces ${v.params.oldReplica} (${v.params.oldMachine})` },
  {
    from: 'create', to: 'done', state: 'failed', reason: 'a machine is gone', failure: true, action: 'end-failed',
    when: (v) => (!up(v.masterMachine, v.connected) || !up(v.targetMachine, v.connected) ? `${!up(v.masterMachine, v.connected) ? v.params.masterMachine : v.params.targetMachine} is not up with its agent connected` : undefined),
  },
  {
    from: 'create', to: 'seed', reason: 'new replica serving', action: 'request-seed',
    when: (v) =>
      v.target?.observedState === 'SERVING' && v.target.observedRole === 'REPLICA' && v.target.epochApplied >= v.store.epoch && (v.master?.epochApplied ?? 0) >= v.store.epoch
        ? `${v.params.target} serves as replica at epoch ${v.store.epoch}; ${v.params.master} copies every user to it`
        : undefined,
  },
  {
    from: 'seed', to: 'done', state: 'failed', reason: 'initial sync failed', failure: true, action: 'end-failed',
    when: (v) => {
      const r = v.master?.seedResult;
      return r?.op === v.op.id && !r.ok ? `${r.error || 'no detail'}${r.failed.length ? ` (not copied: ${r.failed.slice(0, 10).join(', ')})` : ''}` : undefined;
    },
  },
  {
    from: 'seed', to: 'verify', reason: 'initial sync done', action: 'request-check',
    when: (v) => {
      const r = v.master?.seedResult;
      return r?.op === v.op.id && r.ok ? `${r.users} user(s), ${r.mailboxes} mailbox(es), ${r.messages} message(s) in ${r.ms} ms; comparing every mailbox on both slots` : undefined;
    },
  },
  {
    from: 'verify', to: 'done', state: 'failed', reason: 'check failed', failure: true, action: 'end-failed',
    when: (v) => {
      const c = checks(v);
      const error = c?.master?.error || c?.replica?.error;
      return error ? `mbexamine: ${error}` : undefined;
    },
  },
  {
    from: 'verify', to: 'done', state: 'succeeded', reason: 'new replica verified', action: 'finish',
    when: (v) => {
      const d = differences(v);
      return d && d.length === 0 ? `every one of the master's ${checks(v)!.master!.mailboxes.filter((m) => !m.name.startsWith('DELETED.')).length} mailbox(es) is on ${v.params.target} with the same uniqueid and message count` : undefined;
    },
  },
  {
    from: 'verify', to: 'done', state: 'failed', reason: 'new replica differs', failure: true, action: 'end-failed',
    when: (v) => {
      const d = differences(v);
      return d && d.length && stepAge(v) > v.params.verifyTimeoutMs ? `after ${Math.round(stepAge(v) / 1000)} s still ${summary(d)}` : undefined;
    },
  },
  {
    from: 'verify', to: 'verify', reason: 'checking again', action: 'request-check',
    when: (v) => {
      const d = differences(v);
      const asked = Number(v.op.result.checkAskedAt ?? 0);
      return d && d.length && v.now - asked >= RE_REPLICATION_DEFAULTS.recheckMs ? `${summary(d)} (mail arriving meanwhile replicates within a second or two)` : undefined;
    },
  },
];

export function firstReReplicationRule(v: ReReplicationView): { rule: ReReplicationRule; detail: string } | undefined {
  // '*' rows apply at every step
  return firstMatching(
    RE_REPLICATION_RULES.map((r) => (r.from === '*' ? { ...r, from: v.op.step as ReReplicationStep } : r)),
    v,
  );
}
