// Pure: the switchover state machine as a table. Each row says from which step to which, why, and which action the
// orchestrator runs on entering the new step; the first row whose condition holds fires. States cause no actions,
// transitions do. Every action is idempotent (it writes desired state), so a coordinator that died after recording
// a step but before (or after) its action simply runs the action again on resume.
//
//   preflight ─► stop-master ─► replay ─► verify ─► flip ─► start ─► confirm ─► done
//       │             │            │         │        │       (after the flip: forward only)
//       ▼             └────────────┴─────────┴────────┴──► rollback ─► rolled-back
//    refused
import type { MachineRow, MailboxSummaryRow, OperationRow, OperationState, SlotRow, StoreRow } from '../db/rows.js';
import { firstMatching } from './rule-table.js';

export type SwitchoverStep = 'preflight' | 'stop-master' | 'replay' | 'verify' | 'flip' | 'start' | 'confirm' | 'rollback' | 'done' | 'rolled-back' | 'refused';

export type SwitchoverAction = 'none' | 'hold-old-master' | 'request-replay' | 'request-check' | 'flip' | 'release-hold' | 'finish';

export interface SwitchoverParams {
  from: string;
  to: string;
  fromMachine: string;
  toMachine: string;
  /** The store's epoch when the operation started; the flip expects exactly this one. */
  epoch: number;
  /** Before the flip: running out of this time (from the start) rolls back. */
  timeoutMs: number;
  /** After the flip, and for a rollback: how long each step may wait for the agents. */
  settleTimeoutMs: number;
  maxBacklogMailboxes: number;
}

export interface SwitchoverView {
  now: number;
  op: OperationRow;
  params: SwitchoverParams;
  store: StoreRow;
  from: SlotRow;
  to: SlotRow;
  fromMachine: MachineRow;
  toMachine: MachineRow;
  connected: ReadonlySet<string>;
  /** The coordinator has just (re)started: agents may still be reconnecting, so a preflight waits instead of refusing. */
  inGrace: boolean;
  /** How many more switchovers may be past their preflight right now (the coordinator's --max-switchovers). */
  slotsFree: number;
}

export interface SwitchoverRule {
  from: SwitchoverStep;
  to: SwitchoverStep;
  /** Set on rows that end the operation. */
  state?: OperationState;
  reason: string;
  /** Returns the detail that makes the row fire (used in the event), or undefined. */
  when: (v: SwitchoverView) => string | undefined;
  action: SwitchoverAction;
  /** Rows into rollback, and failures after the flip: the detail is the operation's error. */
  failure?: boolean;
}

const PRE_FLIP: readonly SwitchoverStep[] = ['stop-master', 'replay', 'verify'];

const ms = (iso: string) => Date.parse(iso);
const stepAge = (v: SwitchoverView) => v.now - ms(v.op.stepSince);
const reportedSinceStep = (slot: SlotRow, v: SwitchoverView) => slot.reportedAt !== null && ms(slot.reportedAt) >= ms(v.op.stepSince);

function serving(slot: SlotRow, role: 'MASTER' | 'REPLICA', epoch: number): boolean {
  return slot.observedState === 'SERVING' && slot.observedRole === role && slot.epochApplied === epoch;
}

/** Why a switchover of this store must not start now; empty when it may. */
export function switchoverProblems(v: Omit<SwitchoverView, 'op' | 'now'>): string[] {
  const p = v.params;
  const problems: string[] = [];
  for (const [m, what] of [[v.fromMachine, 'old master'], [v.toMachine, 'new master']] as const) {
    if (m.state !== 'up') problems.push(`machine ${m.name} (${what}) is ${m.state}, not up`);
    else if (!v.connected.has(m.name)) problems.push(`the agent of machine ${m.name} (${what}) is not connected`);
  }
  if (v.toMachine.drained) problems.push(`machine ${v.toMachine.name} is drained: no master may be put on it (slotctl machine undrain ${v.toMachine.name})`);
  if (!serving(v.from, 'MASTER', v.store.epoch)) {
    problems.push(`slot ${v.from.name} (master) is ${v.from.observedState} as ${v.from.observedRole || 'nothing'} at epoch ${v.from.epochApplied}, not serving as master at epoch ${v.store.epoch}`);
  }
  if (!serving(v.to, 'REPLICA', v.store.epoch)) {
    problems.push(`slot ${v.to.name} (replica) is ${v.to.observedState} as ${v.to.observedRole || 'nothing'} at epoch ${v.to.epochApplied}, not serving as replica at epoch ${v.store.epoch}`);
  }
  if (v.to.seeding) problems.push(`slot ${v.to.name} is a new replica still being seeded (operation ${v.to.seeding}): wait until it is verified (slotctl operations show ${v.to.seeding})`);
  if (v.from.adminStopped || v.to.adminStopped) problems.push(`an operator stopped slot ${v.from.adminStopped ? v.from.name : v.to.name} (slotctl slot start)`);
  if (v.from.backlog.stalled) problems.push(`replication from ${v.from.name} to ${v.to.name} is stalled: ${v.from.backlog.stallReason || 'no progress'}`);
  if (v.from.backlog.mailboxes > p.maxBacklogMailboxes) {
    problems.push(`the backlog of ${v.from.name} names ${v.from.backlog.mailboxes} mailboxes (limit ${p.maxBacklogMailboxes}): wait until replication catches up, or raise --max-backlog`);
  }
  return problems;
}

/** The steps in words, for a dry run and for `operations show`. */
export function switchoverPlan(p: SwitchoverParams, store: string, serviceIp: string): string[] {
  return [
    `preflight: ${p.fromMachine} and ${p.toMachine} up and connected, ${p.to} serving as replica, backlog not stalled and naming at most ${p.maxBacklogMailboxes} mailboxes`,
    `stop-master: ${p.from} releases ${serviceIp} and stops its cyrmaster`,
    `replay: every leftover sync log of ${p.from} is pushed to ${p.to}; on failure roll back (${p.from} serves again, database untouched)`,
    `verify: no sync log left; the mailboxes the logs named are identical on both slots (mbexamine index headers)`,
    `flip: ${store} master ${p.from} -> ${p.to} in one transaction, epoch ${p.epoch} -> ${p.epoch + 1}`,
    `start: ${p.to} serves as master with ${serviceIp} (gratuitous ARP), ${p.from} as its replica`,
    `confirm: a marker change written on ${p.to} reaches ${p.from}`,
  ];
}

/** Differences between the old master's and the replica's view of the replayed mailboxes. */
export function mailboxDifferences(master: readonly MailboxSummaryRow[], replica: readonly MailboxSummaryRow[]): string[] {
  const byName = new Map(replica.map((m) => [m.name, m]));
  const out: string[] = [];
  for (const m of master) {
    const r = byName.get(m.name);
    if (!r) out.push(`${m.name}: not checked on the replica`);
    else if (m.exists !== r.exists) out.push(`${m.name}: ${m.exists ? 'missing on the replica' : 'exists only on the replica'}`);
    else if (m.exists) {
      for (const k of ['uniqueid', 'messages', 'uidvalidity', 'lastUid', 'highestModseq'] as const) {
        if (m[k] !== r[k]) out.push(`${m.name}: ${k} ${m[k]} on the master, ${r[k]} on the replica`);
      }
    }
  }
  return out;
}

const deadlinePassed = (v: SwitchoverView) =>
  v.now > ms(v.op.createdAt) + v.params.timeoutMs ? `no flip within ${v.params.timeoutMs / 1000} s (at step ${v.op.step})` : undefined;
const CANCELLED = 'an operator cancelled the switchover';
const cancelled = (v: SwitchoverView) => (v.op.cancelRequested ? CANCELLED : undefined);

const machineDown = (v: SwitchoverView) =>
  v.fromMachine.state === 'down' ? `machine ${v.fromMachine.name} (old master) is down` : v.toMachine.state === 'down' ? `machine ${v.toMachine.name} (new master) is down` : undefined;

/** Rows shared by every step before the flip: cancel, timeout and a machine declared down roll back. */
const abortRows: SwitchoverRule[] = PRE_FLIP.flatMap((from) => [
  { from, to: 'rollback' as const, reason: 'a machine is down', when: machineDown, action: 'release-hold' as const, failure: true },
  { from, to: 'rollback' as const, reason: 'cancelled', when: cancelled, action: 'release-hold' as const, failure: true },
  { from, to: 'rollback' as const, reason: 'timed out', when: deadlinePassed, action: 'release-hold' as const, failure: true },
]);

export const SWITCHOVER_RULES: readonly SwitchoverRule[] = [
  {
    from: 'preflight', to: 'refused', state: 'refused', reason: 'preflight failed', action: 'none', failure: true,
    when: (v) => (v.inGrace ? undefined : switchoverProblems(v).join('; ') || undefined),
  },
  {
    from: 'preflight', to: 'stop-master', reason: 'preflight passed', action: 'hold-old-master',
    // with as many switchovers under way as allowed, it waits in preflight (oldest first)
    // ... and while a cleanup (cyr_expire) runs on either slot: no operation runs during one
    when: (v) => (switchoverProblems(v).length || v.slotsFree < 1 || v.from.cleanupOp || v.to.cleanupOp ? undefined : `${v.from.name} serves as master, ${v.to.name} as replica, backlog ${v.from.backlog.files} file(s)`),
  },
  ...abortRows,
  {
    from: 'stop-master', to: 'replay', reason: 'old master stopped', action: 'request-replay',
    when: (v) => (['STOPPED', 'CONFIGURED'].includes(v.from.observedState) && reportedSinceStep(v.from, v) ? `${v.from.name} is ${v.from.observedState}` : undefined),
  },
  {
    from: 'replay', to: 'rollback', reason: 'replay failed', action: 'release-hold', failure: true,
    when: (v) => {
      const r = v.from.replayResult;
      return r?.op === v.op.id && !r.ok ? `replay of ${r.failedFile || 'the sync logs'} to ${v.to.name} failed: ${r.error}` : undefined;
    },
  },
  {
    from: 'replay', to: 'verify', reason: 'leftover sync logs replayed', action: 'request-check',
    when: (v) => {
      const r = v.from.replayResult;
      return r?.op === v.op.id && r.ok ? `${r.replayed.length} file(s) in ${r.ms} ms, ${r.mailboxes?.length ?? 0} mailbox(es) named` : undefined;
    },
  },
  {
    from: 'verify', to: 'rollback', reason: 'replica check failed', action: 'release-hold', failure: true,
    when: (v) => {
      const c = v.to.checkResult;
      if (!(v.from.replayResult?.mailboxes?.length) || c?.op !== v.op.id) return undefined;
      if (c.error) return `mailbox check on ${v.to.name} failed: ${c.error}`;
      const diff = mailboxDifferences(v.from.replayResult.mailboxes, c.mailboxes);
      return diff.length ? `${v.to.name} differs from ${v.from.name}: ${diff.slice(0, 5).join('; ')}${diff.length > 5 ? ` (and ${diff.length - 5} more)` : ''}` : undefined;
    },
  },
  {
    from: 'verify', to: 'flip', reason: 'replica holds everything', action: 'flip',
    when: (v) => {
      // the report that carried the replay result also carried the backlog as the watcher saw it afterwards
      if (v.from.backlog.files > 0) return undefined;
      const named = v.from.replayResult?.mailboxes ?? [];
      if (named.length === 0) return 'no sync log left, no mailbox to compare';
      const c = v.to.checkResult;
      return c?.op === v.op.id && !c.error ? `no sync log left; ${named.length} mailbox(es) identical on both slots` : undefined;
    },
  },
  {
    from: 'flip', to: 'rollback', reason: 'store changed meanwhile', action: 'release-hold', failure: true,
    when: (v) => (v.store.masterSlot !== v.params.to && v.store.epoch !== v.params.epoch ? `epoch is ${v.store.epoch}, expected ${v.params.epoch}` : undefined),
  },
  {
    from: 'flip', to: 'start', reason: 'master flipped in the database', action: 'none',
    when: (v) => (v.store.masterSlot === v.params.to && v.store.epoch === v.params.epoch + 1 ? `${v.params.to} is master at epoch ${v.store.epoch}` : undefined),
  },
  {
    from: 'start', to: 'confirm', reason: 'both slots serve in their new roles', action: 'none',
    when: (v) => (serving(v.to, 'MASTER', v.params.epoch + 1) && serving(v.from, 'REPLICA', v.params.epoch + 1) ? `${v.to.name} master, ${v.from.name} replica` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new master machine is down', action: 'finish', failure: true,
    when: (v) => (v.toMachine.state === 'down' ? `${v.toMachine.name} went down after the flip: its stores fail over` : undefined),
  },
  {
    from: 'confirm', to: 'done', state: 'failed', reason: 'new master machine is down', action: 'finish', failure: true,
    when: (v) => (v.toMachine.state === 'down' ? `${v.toMachine.name} went down after the flip: its stores fail over` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new roles not confirmed', action: 'finish', failure: true,
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database names ${v.to.name} master (epoch ${v.params.epoch + 1}), but within ${v.params.settleTimeoutMs / 1000} s ${v.to.name} is ${v.to.observedState} as ${v.to.observedRole || 'nothing'} and ${v.from.name} is ${v.from.observedState}`
        : undefined,
  },
  {
    from: 'confirm', to: 'done', state: 'succeeded', reason: 'replication flows to the new replica', action: 'finish',
    when: (v) => (v.to.syncConfirmedEpoch >= v.params.epoch + 1 ? `a marker change written on ${v.to.name} reached ${v.from.name}` : undefined),
  },
  {
    from: 'confirm', to: 'done', state: 'failed', reason: 'replication not confirmed', action: 'finish', failure: true,
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `${v.to.name} serves as master, but no change reached ${v.from.name} within ${v.params.settleTimeoutMs / 1000} s${v.to.backlog.stalled ? `: ${v.to.backlog.stallReason}` : ''}`
        : undefined,
  },
  {
    from: 'rollback', to: 'rolled-back', reason: 'old master serves again', action: 'finish',
    // a report from after the rollback began: an agent that hung before acting on the hold still shows SERVING
    when: (v) =>
      serving(v.from, 'MASTER', v.store.epoch) && v.store.masterSlot === v.params.from && reportedSinceStep(v.from, v)
        ? `${v.from.name} serves as master at epoch ${v.store.epoch}`
        : undefined,
  },
  {
    from: 'rollback', to: 'rolled-back', reason: 'old master machine is down', action: 'finish',
    when: (v) => (v.fromMachine.state === 'down' ? `${v.fromMachine.name} is down: the database still names ${v.params.from} master; a failover takes over` : undefined),
  },
  {
    from: 'rollback', to: 'rolled-back', reason: 'old master not confirmed serving', action: 'finish',
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database still names ${v.params.from} master, but it did not report serving within ${v.params.settleTimeoutMs / 1000} s (it will as soon as its agent can)`
        : undefined,
  },
];

export function firstRule(v: SwitchoverView): { rule: SwitchoverRule; detail: string } | undefined {
  return firstMatching(SWITCHOVER_RULES, v);
}

/** The terminal state of a rollback: cancelled when the cancel caused it, failed when something went wrong first. */
export function rolledBackState(op: OperationRow): OperationState {
  return op.error === CANCELLED ? 'cancelled' : 'failed';
}
