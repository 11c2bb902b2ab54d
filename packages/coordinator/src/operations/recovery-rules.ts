// Pure: recovery of what a failover left on a returned old master, as a table. The returning slot is stopped (its
// recovery hold) and has moved its leftover sync logs into quarantine. Its agent pushes each mailbox those logs name
// to the new master (sync_client -m, against a temporary sync_server the new master opens without a restart), then
// checks every message GUID of each such mailbox on the new master. Nothing on the new master is deleted or replaced.
//
//   preflight ─► listen ─► push ─► close ─► done        (close: listener shut; when every message was verified the
//       │                    │                           at-risk record closes and the hold is released)
//       ▼                    └─(timeout)─► close
//    refused
import type { AtRiskRow, MachineRow, OperationRow, OperationState, SlotRow, StoreRow } from '../db/rows.js';
import { firstMatching } from './rule-table.js';

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

export interface RecoveryRule {
  from: RecoveryStep;
  to: RecoveryStep;
  state?: OperationState;
  reason: string;
  when: (v: RecoveryView) => string | undefined;
  action: RecoveryAction;
  failure?: boolean;
}

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

const stepAge = (v: RecoveryView) => v.now - Date.parse(v.op.stepSince);
const age = (v: RecoveryView) => v.now - Date.parse(v.op.createdAt);
const pushed = (v: RecoveryView) => (v.old.recoverResult?.op === v.op.id && v.old.recoverResult.done ? v.old.recoverResult : undefined);

/** Every mailbox pushed (or copied) and verified, or absent on the old slot. */
export function recoveryComplete(result: NonNullable<SlotRow['recoverResult']>): boolean {
  return !result.error && result.mailboxes.every((m) => (m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0);
}

export const RECOVERY_RULES: readonly RecoveryRule[] = [
  { from: 'preflight', to: 'refused', state: 'refused', reason: 'cannot recover now', action: 'none', failure: true, when: (v) => recoveryProblems(v).join('; ') || undefined },
  { from: 'preflight', to: 'listen', reason: 'old master returned', action: 'open-listener', when: (v) => `${v.old.name} quarantined ${v.old.quarantine?.files.length ?? 0} sync log(s) naming ${v.params.mailboxes.length} mailbox(es)` },
  {
    from: 'listen', to: 'push', reason: 'new master listens', action: 'request-push',
    when: (v) => (v.target.recoverListening === v.op.id ? `${v.target.name} accepts sync connections for the recovery` : undefined),
  },
  {
    from: 'push', to: 'close', reason: 'pushed and verified', action: 'close',
    when: (v) => {
      const r = pushed(v);
      return r && recoveryComplete(r) ? `${r.mailboxes.length} mailbox(es) recovered, every message found on ${v.target.name}` : undefined;
    },
  },
  {
    from: 'push', to: 'close', reason: 'recovery incomplete', action: 'close', failure: true,
    when: (v) => {
      const r = pushed(v);
      if (!r) return undefined;
      const bad = r.mailboxes.filter((m) => !((m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0));
      const what = bad.map((m) => `${m.name} (${m.result}${m.missing ? `, ${m.missing} message(s) not on the new master` : ''}${m.detail ? `: ${m.detail}` : ''})`);
      return `${r.mailboxes.length - bad.length} of ${r.mailboxes.length} mailbox(es) recovered; not: ${[r.error, ...what].filter(Boolean).join('; ')}`;
    },
  },
  ...(['listen', 'push'] as const).map((from) => ({
    from, to: 'close' as const, reason: 'timed out', action: 'close' as const, failure: true,
    when: (v: RecoveryView) => (age(v) > v.params.timeoutMs ? `no result within ${v.params.timeoutMs / 1000} s (at step ${v.op.step})` : undefined),
  })),
  {
    from: 'close', to: 'done', state: 'succeeded', reason: 'recovery complete', action: 'none',
    when: (v) => (v.target.recoverListening === '' && pushed(v) && recoveryComplete(pushed(v)!) ? `at-risk record closed; ${v.old.name} starts as replica` : undefined),
  },
  {
    from: 'close', to: 'done', state: 'failed', reason: 'recovery incomplete', action: 'none', failure: true,
    when: (v) =>
      v.target.recoverListening === '' || stepAge(v) > 30_000
        ? `the at-risk record stays open with what was tried, and ${v.old.name} stays stopped: ${v.op.error || 'not every message could be verified'}`
        : undefined,
  },
];

export function firstRecoveryRule(v: RecoveryView): { rule: RecoveryRule; detail: string } | undefined {
  return firstMatching(RECOVERY_RULES, v);
}
