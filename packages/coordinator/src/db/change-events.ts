// Which event a change of state writes, and what it says. Decided here, in pure code, so that the SQL code only
// stores it and any other backend writes the very same events.
import { isReplicationStuck } from '@slotctl/shared';
import type { AtRiskState, BacklogRow, CleanupResultRow, OperationState } from './rows.js';

/** An event's own words; storage adds where it happened (machine, store, slot, epoch, op). */
export interface EventWords {
  kind: string;
  reason: string;
  data?: unknown;
}

/**
 * Replication that stops moving is an event when it starts and when it ends (undefined: no change). A rolling
 * sync_client that keeps failing although the replica accepts connections is critical: measured, it loops on one
 * mailbox for ever and replicates nothing else of the slot; the reason (the agent's words) carries the last
 * SYNCERROR/IOERROR line, which names it. A replica that refuses connections is only a warning: it is down or
 * restarting, and replication resumes by itself when it is back.
 */
export function replicationStallEvent(wasStalled: boolean, now: BacklogRow): EventWords | undefined {
  if (wasStalled === now.stalled) return undefined;
  if (!now.stalled) return { kind: 'slot.replication-resumed', reason: `replication no longer stalled: it moves again or its replica is back (${now.files} log file(s) left)` };
  const stuck = isReplicationStuck(now);
  return {
    kind: stuck ? 'slot.replication-stuck' : 'slot.replication-stalled',
    reason: now.stallReason,
    data: { severity: stuck ? 'critical' : 'warning', files: now.files, mailboxes: now.mailboxes },
  };
}

/** The end of a cleanup run: done, or failed with the last lines of its output (a warning). */
export function cleanupEndEvent(result: CleanupResultRow, reason: string): EventWords {
  return {
    kind: result.ok ? 'cleanup.done' : 'cleanup.failed',
    reason,
    data: { ms: result.ms, freedBytes: result.freedBytes, exitCode: result.exitCode, tail: result.ok ? [] : result.tail.slice(-10), severity: result.ok ? 'info' : 'warning' },
  };
}

/** An operation's step: `operation.step` while it runs, `operation.<state>` when it ends. */
export function operationStepKind(state: OperationState): string {
  return state === 'running' ? 'operation.step' : `operation.${state}`;
}

/** An at-risk record is closed once recovered or found to hold nothing; open and recovering ones stay open. */
export function closesAtRisk(state: AtRiskState): boolean {
  return state === 'recovered' || state === 'nothing-lost';
}
