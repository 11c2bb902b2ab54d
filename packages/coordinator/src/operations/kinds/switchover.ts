// The switchover kind: its state machine as a table, the view the table reads, and the actions its rows name. Each
// row says from which step to which, why, and which action runs on entering the new step; the first row whose
// condition holds fires. States cause no actions, transitions do. Every action is idempotent (it writes desired state), so a coordinator that died after recording
// a step but before (or after) its action simply runs the action again on resume.
//
//   preflight ─► catch-up ─► stop-master ─► replay ─► verify ─► flip ─► start ─► confirm ─► done
//       │            │             │            │         │        │       (after the flip: forward only)
//       ▼            ▼             └────────────┴─────────┴────────┴──► rollback ─► rolled-back
//    refused   refused / rolled-back (nothing touched yet)
import { ConflictError, NotFoundError } from '@slotctl/shared';
import { OperationConflict, type MachineRow, type MailboxSummaryRow, type OperationRow, type OperationState, type SlotRow, type StoreRow } from '../../db/rows.js';
import { createOperation, failedAsRemoved, type KindContext, type OperationKind } from '../framework/kind.js';
import { pairRows, type PairView } from '../framework/pair.js';
import { clock, stepAge, until, type Rule } from '../framework/rule.js';

export type SwitchoverStep = 'preflight' | 'catch-up' | 'stop-master' | 'replay' | 'verify' | 'flip' | 'start' | 'confirm' | 'rollback' | 'done' | 'rolled-back' | 'refused';

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

export interface SwitchoverView extends PairView<SwitchoverParams> {
  /** The coordinator has just (re)started: agents may still be reconnecting, so a preflight waits instead of refusing. */
  inGrace: boolean;
  /** How many more switchovers may be past their preflight right now (the coordinator's --max-switchovers). */
  slotsFree: number;
  /** For the waiting sentence: the limit (--max-switchovers) and the end of the restart's grace (epoch ms). */
  maxSwitchovers?: number;
  graceUntil?: number;
}

export type SwitchoverRule = Rule<SwitchoverView, SwitchoverAction, SwitchoverStep>;

export const PRE_FLIP: readonly SwitchoverStep[] = ['stop-master', 'replay', 'verify'];

const ms = (iso: string) => Date.parse(iso);
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
  if (v.from.backlog.unloggedSince) {
    problems.push(`${v.from.name} may have changes its sync log could not record (since ${v.from.backlog.unloggedSince}; its meta partition full or failing): free space on it; its agent then logs a sync of every mailbox, and the switchover may run`);
  }
  if (v.from.backlog.mailboxes > p.maxBacklogMailboxes) {
    problems.push(`the backlog of ${v.from.name} names ${v.from.backlog.mailboxes} mailboxes (limit ${p.maxBacklogMailboxes}): wait until replication catches up, or raise --max-backlog`);
  }
  return problems;
}

/** The steps in words, for a dry run and for `operations show`. */
export function switchoverPlan(p: SwitchoverParams, store: string, serviceIp: string): string[] {
  return [
    `preflight: ${p.fromMachine} and ${p.toMachine} up and connected, ${p.to} serving as replica, backlog not stalled, every change in the sync log and the backlog naming at most ${p.maxBacklogMailboxes} mailboxes`,
    `stop-master: ${p.from} releases ${serviceIp} and stops its cyrmaster (asked to replay in the same message)`,
    `replay: every leftover sync log of ${p.from} is pushed to ${p.to} as soon as it is stopped; on failure roll back (${p.from} serves again, database untouched)`,
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

/**
 * Catch-up before the window: the old master stops only once rolling replication has (nearly) drained its backlog,
 * or after this long waiting for it. What the rolling sync_client sends while the store serves is not replayed
 * after the stop, while the store is unserved: a 1,000-message backlog is seconds of replay in the window.
 */
export const CATCH_UP_BYTES = 4096;
export const CATCH_UP_MS = 5000;
const caughtUp = (v: SwitchoverView) => v.from.backlog.bytes <= CATCH_UP_BYTES || stepAge(v) >= CATCH_UP_MS;

const deadlinePassed = (v: SwitchoverView) =>
  v.now > ms(v.op.createdAt) + v.params.timeoutMs ? `no flip within ${v.params.timeoutMs / 1000} s (at step ${v.op.step})` : undefined;
const CANCELLED = 'an operator cancelled the switchover';
const cancelled = (v: SwitchoverView) => (v.op.cancelRequested ? CANCELLED : undefined);

/** The terminal state of a rollback: cancelled when the cancel caused it, failed when something went wrong first. */
export function rolledBackState(op: OperationRow): OperationState {
  return op.error === CANCELLED ? 'cancelled' : 'failed';
}
const ROLLED_BACK = { state: (v: SwitchoverView) => rolledBackState(v.op), stateDoc: 'failed, or cancelled when a cancel caused it' };

const machineDown = (v: SwitchoverView) =>
  v.fromMachine.state === 'down' ? `machine ${v.fromMachine.name} (old master) is down` : v.toMachine.state === 'down' ? `machine ${v.toMachine.name} (new master) is down` : undefined;

/** Rows shared by every step before the flip: cancel, timeout and a machine declared down roll back. */
const abortRows: SwitchoverRule[] = PRE_FLIP.flatMap((from) => [
  { from, to: 'rollback' as const, reason: 'a machine is down', doc: 'a machine of the switchover is declared down', when: machineDown, action: 'release-hold' as const, failure: true },
  { from, to: 'rollback' as const, reason: 'cancelled', doc: 'cancel', when: cancelled, action: 'release-hold' as const, failure: true },
  { from, to: 'rollback' as const, reason: 'timed out', doc: 'no flip within `--timeout` (default 120 s)', when: deadlinePassed, action: 'release-hold' as const, failure: true },
]);

export const SWITCHOVER_RULES: readonly SwitchoverRule[] = [
  {
    from: 'preflight', to: 'refused', state: 'refused', reason: 'preflight failed', action: 'none', failure: true,
    doc: 'any problem: a machine not up or not connected, B\'s machine drained, A not serving as master or B not as replica at E, B still being seeded, an operator stop, replication stalled, changes the sync log could not record, backlog over `--max-backlog` mailboxes (after a restart\'s grace)',
    when: (v) => (v.inGrace ? undefined : switchoverProblems(v).join('; ') || undefined),
  },
  { from: 'preflight', to: 'rolled-back', state: 'cancelled', reason: 'cancelled', doc: 'cancel (nothing was touched yet)', when: cancelled, action: 'finish', failure: true },
  {
    from: 'preflight', to: 'catch-up', reason: 'preflight passed', action: 'none',
    doc: 'no problem, fewer than `--max-switchovers` switchovers past their preflight, no cleanup running on A or B',
    // with as many switchovers under way as allowed, it waits in preflight (oldest first)
    // ... and while a cleanup (cyr_expire) runs on either slot: no operation runs during one
    when: (v) => (switchoverProblems(v).length || v.slotsFree < 1 || v.from.requests.cleanup || v.to.requests.cleanup ? undefined : `${v.from.name} serves as master, ${v.to.name} as replica, backlog ${v.from.backlog.files} file(s), ${v.from.backlog.bytes} bytes`),
  },
  {
    from: 'catch-up', to: 'refused', state: 'refused', reason: 'preflight failed', action: 'none', failure: true,
    doc: 'a problem of the preflight appears while A\'s backlog drains (after a restart\'s grace; nothing was touched yet)',
    when: (v) => (v.inGrace ? undefined : switchoverProblems(v).join('; ') || undefined),
  },
  { from: 'catch-up', to: 'rolled-back', state: 'cancelled', reason: 'cancelled', doc: 'cancel (nothing was touched yet)', when: cancelled, action: 'finish', failure: true },
  { from: 'catch-up', to: 'rolled-back', state: 'failed', reason: 'timed out', doc: 'no flip within `--timeout` (nothing was touched yet)', when: deadlinePassed, action: 'finish', failure: true },
  {
    from: 'catch-up', to: 'stop-master', reason: 'backlog caught up', action: 'hold-old-master',
    doc: `A's backlog at most ${CATCH_UP_BYTES / 1024} KiB, or ${CATCH_UP_MS / 1000} s in this step: what rolling replication sends while the store serves is not replayed in the window`,
    when: (v) => (caughtUp(v) && switchoverProblems(v).length === 0 ? `backlog of ${v.from.name}: ${v.from.backlog.files} file(s), ${v.from.backlog.bytes} bytes${v.from.backlog.bytes > CATCH_UP_BYTES ? ` (still over ${CATCH_UP_BYTES / 1024} KiB after ${CATCH_UP_MS / 1000} s: the replay takes the rest)` : ''}` : undefined),
  },
  ...abortRows,
  {
    from: 'stop-master', to: 'replay', reason: 'old master stopped', action: 'request-replay', doc: 'A reports STOPPED (a report newer than the step)',
    when: (v) => (['STOPPED', 'CONFIGURED'].includes(v.from.observedState) && reportedSinceStep(v.from, v) ? `${v.from.name} is ${v.from.observedState}` : undefined),
  },
  {
    from: 'replay', to: 'rollback', reason: 'replay failed', action: 'release-hold', failure: true, doc: 'the replay failed (file and error recorded)',
    when: (v) => {
      const r = v.from.results.replay;
      return r?.op === v.op.id && !r.ok ? `replay of ${r.failedFile || 'the sync logs'} to ${v.to.name} failed: ${r.error}` : undefined;
    },
  },
  {
    from: 'replay', to: 'verify', reason: 'leftover sync logs replayed', action: 'request-check', doc: 'replayed',
    when: (v) => {
      const r = v.from.results.replay;
      return r?.op === v.op.id && r.ok ? `${r.replayed.length} file(s) in ${r.ms} ms, ${r.mailboxes?.length ?? 0} mailbox(es) named` : undefined;
    },
  },
  {
    from: 'verify', to: 'rollback', reason: 'replica check failed', action: 'release-hold', failure: true,
    doc: 'B\'s summary differs from A\'s (uniqueid, messages, UIDVALIDITY, last UID, highest modseq), or the check failed',
    when: (v) => {
      const c = v.to.results.check;
      if (!(v.from.results.replay?.mailboxes?.length) || c?.op !== v.op.id) return undefined;
      if (c.error) return `mailbox check on ${v.to.name} failed: ${c.error}`;
      const diff = mailboxDifferences(v.from.results.replay.mailboxes, c.mailboxes);
      return diff.length ? `${v.to.name} differs from ${v.from.name}: ${diff.slice(0, 5).join('; ')}${diff.length > 5 ? ` (and ${diff.length - 5} more)` : ''}` : undefined;
    },
  },
  {
    from: 'verify', to: 'flip', reason: 'replica holds everything', action: 'flip', doc: 'no sync log left, and no mailbox named or all identical',
    when: (v) => {
      // the report that carried the replay result also carried the backlog as the watcher saw it afterwards
      if (v.from.backlog.files > 0) return undefined;
      const named = v.from.results.replay?.mailboxes ?? [];
      if (named.length === 0) return 'no sync log left, no mailbox to compare';
      const c = v.to.results.check;
      return c?.op === v.op.id && !c.error ? `no sync log left; ${named.length} mailbox(es) identical on both slots` : undefined;
    },
  },
  {
    from: 'flip', to: 'rollback', reason: 'store changed meanwhile', action: 'release-hold', failure: true, doc: 'the flip did not happen: the store\'s epoch moved meanwhile',
    when: (v) => (v.store.masterSlot !== v.params.to && v.store.epoch !== v.params.epoch ? `epoch is ${v.store.epoch}, expected ${v.params.epoch}` : undefined),
  },
  {
    from: 'flip', to: 'start', reason: 'master flipped in the database', action: 'none', doc: 'the database says B at E+1',
    when: (v) => (v.store.masterSlot === v.params.to && v.store.epoch === v.params.epoch + 1 ? `${v.params.to} is master at epoch ${v.store.epoch}` : undefined),
  },
  {
    from: 'start', to: 'confirm', reason: 'both slots serve in their new roles', action: 'none', doc: 'B serves as master and A as replica, both at E+1',
    when: (v) => (serving(v.to, 'MASTER', v.params.epoch + 1) && serving(v.from, 'REPLICA', v.params.epoch + 1) ? `${v.to.name} master, ${v.from.name} replica` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new master machine is down', action: 'finish', failure: true, doc: 'B\'s machine is declared down after the flip (its stores fail over)',
    when: (v) => (v.toMachine.state === 'down' ? `${v.toMachine.name} went down after the flip: its stores fail over` : undefined),
  },
  {
    from: 'confirm', to: 'done', state: 'failed', reason: 'new master machine is down', action: 'finish', failure: true, doc: 'B\'s machine is declared down after the flip (its stores fail over)',
    when: (v) => (v.toMachine.state === 'down' ? `${v.toMachine.name} went down after the flip: its stores fail over` : undefined),
  },
  {
    from: 'start', to: 'done', state: 'failed', reason: 'new roles not confirmed', action: 'finish', failure: true, doc: '60 s without the new roles (forward only after the flip)',
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database names ${v.to.name} master (epoch ${v.params.epoch + 1}), but within ${v.params.settleTimeoutMs / 1000} s ${v.to.name} is ${v.to.observedState} as ${v.to.observedRole || 'nothing'} and ${v.from.name} is ${v.from.observedState}`
        : undefined,
  },
  {
    from: 'confirm', to: 'done', state: 'succeeded', reason: 'replication flows to the new replica', action: 'finish', doc: 'B\'s agent saw a marker reach A',
    when: (v) => (v.to.syncConfirmedEpoch >= v.params.epoch + 1 ? `a marker change written on ${v.to.name} reached ${v.from.name}` : undefined),
  },
  {
    from: 'confirm', to: 'done', state: 'failed', reason: 'replication not confirmed', action: 'finish', failure: true, doc: '60 s without the marker (forward only after the flip)',
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `${v.to.name} serves as master, but no change reached ${v.from.name} within ${v.params.settleTimeoutMs / 1000} s${v.to.backlog.stalled ? `: ${v.to.backlog.stallReason}` : ''}`
        : undefined,
  },
  {
    from: 'rollback', to: 'rolled-back', ...ROLLED_BACK, reason: 'old master serves again', action: 'finish', doc: 'A reports serving as master at E after the rollback began',
    // a report from after the rollback began: an agent that hung before acting on the hold still shows SERVING
    when: (v) =>
      serving(v.from, 'MASTER', v.store.epoch) && v.store.masterSlot === v.params.from && reportedSinceStep(v.from, v)
        ? `${v.from.name} serves as master at epoch ${v.store.epoch}`
        : undefined,
  },
  {
    from: 'rollback', to: 'rolled-back', ...ROLLED_BACK, reason: 'old master machine is down', action: 'finish', doc: 'A\'s machine is declared down (a failover takes over)',
    when: (v) => (v.fromMachine.state === 'down' ? `${v.fromMachine.name} is down: the database still names ${v.params.from} master; a failover takes over` : undefined),
  },
  {
    from: 'rollback', to: 'rolled-back', ...ROLLED_BACK, reason: 'old master not confirmed serving', action: 'finish', doc: '60 s without that report',
    when: (v) =>
      stepAge(v) > v.params.settleTimeoutMs
        ? `the database still names ${v.params.from} master, but it did not report serving within ${v.params.settleTimeoutMs / 1000} s (it will as soon as its agent can)`
        : undefined,
  },
];


export const SWITCHOVER_DEFAULTS = { timeoutMs: 120_000, settleTimeoutMs: 60_000, maxBacklogMailboxes: 1000 };

/** Why a switchover waits at its step when no row fires. */
export function switchoverWaiting(v: SwitchoverView): string {
  const p = v.params;
  switch (v.op.step) {
    case 'preflight': {
      const problems = switchoverProblems(v);
      if (problems.length) return `agents may still be reconnecting to the restarted coordinator (grace until ${v.graceUntil ? clock(new Date(v.graceUntil).toISOString()) : '?'}): ${problems.join('; ')}`;
      if (v.slotsFree < 1) return `no free switchover slot (${(v.maxSwitchovers ?? 0) - v.slotsFree} running, limit ${v.maxSwitchovers ?? '?'}: --max-switchovers)`;
      const cleaning = [v.from, v.to].find((s) => s.requests.cleanup?.id);
      if (cleaning) return `a cleanup runs on ${cleaning.name} (cyr_expire since ${clock(cleaning.cleanupStartedAt)})`;
      return 'preflight';
    }
    case 'catch-up': {
      const problems = switchoverProblems(v);
      if (problems.length) return `agents may still be reconnecting to the restarted coordinator: ${problems.join('; ')}`;
      return `rolling replication to drain the backlog of ${p.from} (${v.from.backlog.bytes} bytes, ${v.from.backlog.files} file(s)) to ${CATCH_UP_BYTES / 1024} KiB before it stops, ${until(v.op.stepSince, CATCH_UP_MS)}`;
    }
    case 'stop-master':
      return `${p.from} to report STOPPED (last report: ${v.from.observedState}${v.from.reportedAt && ms(v.from.reportedAt) >= ms(v.op.stepSince) ? '' : ', from before this step'})`;
    case 'replay':
      return `the agent of ${p.fromMachine} to replay the leftover sync logs of ${p.from} to ${p.to} (${v.from.backlog.files} file(s) at its last report)`;
    case 'verify':
      return v.from.backlog.files > 0
        ? `${p.from} still reports ${v.from.backlog.files} sync log file(s)`
        : `the agent of ${p.toMachine} to summarize the ${v.from.results.replay?.mailboxes?.length ?? 0} replayed mailbox(es) on ${p.to}`;
    case 'flip':
      return `the flip in the database (store ${v.store.name}: master ${v.store.masterSlot} at epoch ${v.store.epoch})`;
    case 'start':
      return `${p.to} to serve as master and ${p.from} as replica at epoch ${p.epoch + 1} (now ${v.to.observedState} as ${v.to.observedRole || 'nothing'} at ${v.to.epochApplied}, ${v.from.observedState} as ${v.from.observedRole || 'nothing'} at ${v.from.epochApplied}), ${until(v.op.stepSince, p.settleTimeoutMs)}`;
    case 'confirm':
      return `a marker change written on ${p.to} to reach ${p.from}${v.to.backlog.stalled ? ` (replication stalled: ${v.to.backlog.stallReason})` : ''}, ${until(v.op.stepSince, p.settleTimeoutMs)}`;
    case 'rollback':
      return `${p.from} to report serving as master at epoch ${v.store.epoch} since the rollback began (last report: ${v.from.observedState} as ${v.from.observedRole || 'nothing'} at ${v.from.epochApplied})`;
    default:
      return '';
  }
}

function switchoverView(op: OperationRow, ctx: KindContext): SwitchoverView | undefined {
  const { storage } = ctx;
  const params = op.params as unknown as SwitchoverParams;
  if (!op.store || ![params.from, params.to, params.fromMachine, params.toMachine].every((x) => typeof x === 'string')) return undefined;
  const pair = pairRows(storage, op.store, params);
  if (!pair) return undefined;
  const now = Date.now();
  // only a preflight needs the count (the --max-switchovers bound): no query for the other steps
  const active = op.step === 'preflight' ? storage.operations.running().filter((o) => o.kind === 'switchover' && o.step !== 'preflight').length : 0;
  const graceUntil = ctx.graceUntil();
  return { now, op, params, ...pair, connected: ctx.connected(), inGrace: now < graceUntil, slotsFree: ctx.maxSwitchovers - active, maxSwitchovers: ctx.maxSwitchovers, graceUntil };
}

/** The requests a switchover leaves in the slots' desired state cleared (its replay and check; the old master's hold if it is ours). */
function clearRequests(v: SwitchoverView, ctx: KindContext, hold: 'release' | 'if-ours'): void {
  const { storage } = ctx;
  const p = v.params;
  if (hold === 'release' || storage.slots.get(p.from)?.opHold === v.op.id) storage.slots.setOpHold(p.from, '');
  // the replay asked with the hold may never have run (a rollback before A stopped): it must not run at A's next stop
  if (storage.slots.get(p.from)?.requests.replay?.id === v.op.id) storage.requests.withdraw(p.from, 'replay');
  storage.requests.withdraw(p.to, 'check');
  ctx.push([p.fromMachine, p.toMachine]);
}

export const SWITCHOVER: OperationKind<SwitchoverView, SwitchoverAction> = {
  name: 'switchover',
  idPrefix: 'sw',
  rules: SWITCHOVER_RULES,
  actionDocs: {
    'hold-old-master': 'hold A stopped (`op_hold`) and ask it, in the same desired state, to replay its leftover sync logs once stopped (a `replay` request, id = operation id): A closes its service listeners and waits (up to 15 s) until cyrmaster\'s LMTP listener is gone and no delivery is in flight, then releases the service IP, stops and replays without waiting for another message',
    'request-replay': 'ask A to replay its leftover sync logs (a `replay` request, id = operation id), unless the request the hold sent is still there: then nothing to send',
    'request-check': 'ask B to summarize the mailboxes the replayed logs named (a `check` request)',
    flip: 'one transaction: master B, replica A, epoch E+1, hold released, replay and check requests cleared, event; both agents get their new desired state',
    'release-hold': 'A serves again (its hold released), database untouched',
    finish: 'clear the requests (and the hold, if still ours)',
  },
  view: switchoverView,
  actions: {
    none: () => undefined,
    // The replay is asked with the hold: the agent runs it as soon as the slot is down (replay.ts: only then), so the
    // window does not wait for a round trip to the coordinator between the stop and the replay. The price: a rollback
    // that comes while A replays waits for the replay to end (the catch-up step keeps it short), as one during the
    // replay step always did; and a stop whose apply failed after the stop runs no replay until the timeout.
    'hold-old-master': (v, ctx) => {
      ctx.storage.transaction(() => {
        ctx.storage.slots.setOpHold(v.params.from, v.op.id);
        ctx.storage.requests.put(v.params.from, { kind: 'replay', id: v.op.id }, `switchover ${v.op.id}: replay leftover sync logs to ${v.params.to} once stopped`);
      });
      ctx.push([v.params.fromMachine]);
    },
    'request-replay': (v, ctx) => {
      if (v.from.requests.replay?.id === v.op.id) return;
      ctx.storage.requests.put(v.params.from, { kind: 'replay', id: v.op.id }, `switchover ${v.op.id}: replay leftover sync logs to ${v.params.to}`);
      ctx.push([v.params.fromMachine]);
    },
    'request-check': (v, ctx) => {
      const named = ctx.storage.slots.get(v.params.from)?.results.replay?.mailboxes?.map((m) => m.name) ?? [];
      if (named.length === 0) return;
      ctx.storage.requests.put(v.params.to, { kind: 'check', id: v.op.id, mailboxes: named });
      ctx.push([v.params.toMachine]);
    },
    flip: (v, ctx) => {
      const { storage } = ctx;
      const p = v.params;
      try {
        storage.transaction(() => {
          storage.stores.setMaster(v.store.name, p.to, p.epoch, `switchover ${v.op.id}: ${p.from} -> ${p.to}`, v.op.id);
          storage.slots.setOpHold(p.from, '');
          storage.requests.withdraw(p.from, 'replay');
          storage.requests.withdraw(p.to, 'check');
        });
      } catch (err) {
        ctx.log.warn({ op: v.op.id, store: v.store.name, err: (err as Error).message }, 'flip not done');
      }
      ctx.push([p.fromMachine, p.toMachine]);
    },
    'release-hold': (v, ctx) => clearRequests(v, ctx, 'release'),
    finish: (v, ctx) => clearRequests(v, ctx, 'if-ours'),
  },
  gone: failedAsRemoved('store or slot removed from the cluster meanwhile', 'the store or one of its slots was removed from the cluster'),
  epoch: (v, rule) => (rule.action === 'flip' ? v.params.epoch : v.store.epoch),
  crashName: (step) => step,
  cancelRefusal: (op) =>
    ['preflight', 'catch-up', ...PRE_FLIP].includes(op.step)
      ? undefined
      : { message: `operation ${op.id} is past the flip (at step ${op.step}): it completes, it cannot be rolled back`, hint: `to move the master back, wait for it to end and run slotctl store switchover ${op.store}` },
  waiting: switchoverWaiting,
};

export interface SwitchoverOptions {
  timeoutMs?: number | undefined;
  maxBacklogMailboxes?: number | undefined;
  parent?: string | undefined;
  reason?: string | undefined;
}

/** The switchover a request would start: its parameters, preflight problems and plan, without touching anything. */
export function previewSwitchover(ctx: KindContext, storeName: string, options: SwitchoverOptions = {}): { params: SwitchoverParams; problems: string[]; plan: string[] } {
  const { storage } = ctx;
  const store = storage.stores.get(storeName);
  if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
  const from = storage.slots.get(store.masterSlot)!;
  const to = storage.slots.get(store.replicaSlot)!;
  const params: SwitchoverParams = {
    from: from.name,
    to: to.name,
    fromMachine: from.machine,
    toMachine: to.machine,
    epoch: store.epoch,
    timeoutMs: options.timeoutMs || SWITCHOVER_DEFAULTS.timeoutMs,
    settleTimeoutMs: SWITCHOVER_DEFAULTS.settleTimeoutMs,
    maxBacklogMailboxes: options.maxBacklogMailboxes || SWITCHOVER_DEFAULTS.maxBacklogMailboxes,
  };
  const view = { params, store, from, to, fromMachine: storage.machines.get(from.machine)!, toMachine: storage.machines.get(to.machine)!, connected: ctx.connected(), inGrace: false, slotsFree: 1 };
  return { params, problems: switchoverProblems(view), plan: switchoverPlan(params, store.name, store.serviceIp) };
}

/** Records a switchover (the caller evaluates it at once); the returned id names it. */
export function createSwitchover(ctx: KindContext, storeName: string, options: SwitchoverOptions = {}): string {
  const { params } = previewSwitchover(ctx, storeName, options);
  return createOperation(
    ctx,
    SWITCHOVER,
    {
      store: storeName,
      parent: options.parent,
      step: 'preflight',
      params: { ...params },
      epoch: params.epoch,
      reason: options.reason ?? `switchover of ${storeName}: ${params.from} (${params.fromMachine}) -> ${params.to} (${params.toMachine}) requested`,
    },
    (running) => new ConflictError(`store ${storeName} is busy: ${new OperationConflict(running).message}`, { hint: `wait for it (slotctl operations show ${running.id} --wait) or cancel it (slotctl operations cancel ${running.id})` }),
  );
}
