import { describe, expect, it } from 'vitest';
import { closesAtRisk, cleanupEndEvent, operationStepKind, replicationStallEvent } from './change-events.js';
import { EMPTY_BACKLOG, type BacklogRow, type CleanupResultRow } from './rows.js';

// the agent's words (agent sync/watch.ts) for the two ways replication stops moving
const STUCK = 'no progress for 30 s although 10.0.1.2:2005 accepts connections (rolling sync_client stuck?): SYNCERROR: user.bob: mailbox has wrong uniqueid';
const REFUSED = 'replica 10.0.1.2:2005 refuses connections; backlog waiting for 30 s';

function backlog(change: Partial<BacklogRow>): BacklogRow {
  return { ...EMPTY_BACKLOG, files: 3, mailboxes: 2, ...change };
}

describe('replicationStallEvent', () => {
  it('says nothing while replication stays as it was', () => {
    expect(replicationStallEvent(false, backlog({}))).toBeUndefined();
    expect(replicationStallEvent(true, backlog({ stalled: true, stallReason: STUCK }))).toBeUndefined();
  });

  it('calls a client that fails while the replica accepts connections stuck (critical)', () => {
    expect(replicationStallEvent(false, backlog({ stalled: true, stallReason: STUCK }))).toEqual({
      kind: 'slot.replication-stuck',
      reason: STUCK,
      data: { severity: 'critical', files: 3, mailboxes: 2 },
    });
  });

  it('calls a replica that refuses connections stalled (warning)', () => {
    expect(replicationStallEvent(false, backlog({ stalled: true, stallReason: REFUSED }))).toEqual({
      kind: 'slot.replication-stalled',
      reason: REFUSED,
      data: { severity: 'warning', files: 3, mailboxes: 2 },
    });
  });

  it('calls any other or an empty reason stalled', () => {
    expect(replicationStallEvent(false, backlog({ stalled: true, stallReason: '' }))?.kind).toBe('slot.replication-stalled');
    expect(replicationStallEvent(false, backlog({ stalled: true, stallReason: 'IOERROR: something' }))?.kind).toBe('slot.replication-stalled');
  });

  it('says when it moves again, with the files left and no severity', () => {
    expect(replicationStallEvent(true, backlog({ files: 1 }))).toEqual({ kind: 'slot.replication-resumed', reason: 'replication no longer stalled: it moves again or its replica is back (1 log file(s) left)' });
  });
});

describe('cleanupEndEvent', () => {
  const result: CleanupResultRow = { op: 'cl-1', ok: true, exitCode: 0, startedAt: '', finishedAt: '', ms: 1200, freedBytes: 4096, error: '', tail: Array.from({ length: 20 }, (_, i) => `line ${i}`) };

  it('reports a run that ended well without its output', () => {
    expect(cleanupEndEvent(result, 'why')).toEqual({ kind: 'cleanup.done', reason: 'why', data: { ms: 1200, freedBytes: 4096, exitCode: 0, tail: [], severity: 'info' } });
  });

  it('reports a failed run as a warning with its last ten lines', () => {
    const event = cleanupEndEvent({ ...result, ok: false, exitCode: 75 }, 'why');
    expect(event.kind).toBe('cleanup.failed');
    expect(event.data).toEqual({ ms: 1200, freedBytes: 4096, exitCode: 75, tail: result.tail.slice(10), severity: 'warning' });
  });
});

describe('operation steps and at-risk records', () => {
  it('names a step by the state the operation ends in', () => {
    expect(operationStepKind('running')).toBe('operation.step');
    expect(operationStepKind('succeeded')).toBe('operation.succeeded');
    expect(operationStepKind('cancelled')).toBe('operation.cancelled');
  });

  it('closes a record once recovered or found empty', () => {
    expect(['open', 'recovering', 'recovered', 'nothing-lost'].map((s) => closesAtRisk(s as never))).toEqual([false, false, true, true]);
  });
});
