// The switchover and drain rule tables over hand-made snapshots (pure logic: no database, no agents).
import { describe, expect, it } from 'vitest';
import { EMPTY_BACKLOG, type MachineRow, type OperationRow, type SlotRow, type StoreRow } from '../../db/rows.js';
import { T0, iso, machine, slot } from '../rows.fixture.js';
import { decide } from '../framework/rule.js';
import { SWITCHOVER, SWITCHOVER_RULES, mailboxDifferences, switchoverWaiting, type SwitchoverView } from './switchover.js';

function view(step: string, over: { from?: Partial<SlotRow>; to?: Partial<SlotRow>; store?: Partial<StoreRow>; op?: Partial<OperationRow>; now?: number; toMachine?: Partial<MachineRow>; connected?: string[]; inGrace?: boolean; slotsFree?: number } = {}): SwitchoverView {
  const op: OperationRow = {
    id: 'sw-1', kind: 'switchover', store: 's01', machine: null, state: 'running', step, stepSince: iso(100), params: {}, result: {}, error: '', parent: null,
    cancelRequested: false, createdAt: iso(0), updatedAt: iso(100), waiting: '', ...over.op,
  };
  return {
    now: T0 + (over.now ?? 200),
    op,
    params: { from: 's01-m1', to: 's01-m2', fromMachine: 'm1', toMachine: 'm2', epoch: 4, timeoutMs: 120_000, settleTimeoutMs: 60_000, maxBacklogMailboxes: 1000 },
    store: { name: 's01', serviceIp: '10.0.3.1', masterSlot: 's01-m1', replicaSlot: 's01-m2', epoch: 4, ...over.store },
    from: slot('s01-m1', 'm1', over.from),
    to: slot('s01-m2', 'm2', { observedRole: 'REPLICA', ...over.to }),
    fromMachine: machine('m1'),
    toMachine: machine('m2', over.toMachine),
    connected: new Set(over.connected ?? ['m1', 'm2']),
    inGrace: over.inGrace ?? false,
    slotsFree: over.slotsFree ?? 1,
  };
}

const fire = (v: SwitchoverView) => {
  const f = decide(SWITCHOVER_RULES, v);
  return f && { to: f.rule.to, action: f.rule.action, state: f.rule.state, detail: f.detail };
};

describe('switchover rules', () => {
  it('has a row for every step that can wait, and every row names an action', () => {
    const froms = new Set(SWITCHOVER_RULES.map((r) => r.from));
    for (const step of ['preflight', 'stop-master', 'replay', 'verify', 'flip', 'start', 'confirm', 'rollback']) expect(froms.has(step as never)).toBe(true);
    for (const r of SWITCHOVER_RULES) expect(r.action).toBeTruthy();
  });

  it('enters each step with one action only, so a resumed operation knows which action to run again', () => {
    for (const step of new Set(SWITCHOVER_RULES.map((r) => r.to))) {
      expect(new Set(SWITCHOVER_RULES.filter((r) => r.to === step).map((r) => r.action)).size, step).toBe(1);
    }
  });

  it('passes preflight and holds the old master when both slots serve in step', () => {
    expect(fire(view('preflight'))).toMatchObject({ to: 'catch-up', action: 'none' });
    expect(fire(view('catch-up'))).toMatchObject({ to: 'stop-master', action: 'hold-old-master' });
  });

  it('refuses with every reason at once', () => {
    const f = fire(view('preflight', { to: { observedState: 'STOPPED' }, from: { backlog: { ...EMPTY_BACKLOG, stalled: true, stallReason: 'replica refuses connections' } }, toMachine: { drained: true }, connected: ['m1'] }));
    expect(f).toMatchObject({ to: 'refused', state: 'refused' });
    expect(f!.detail).toContain('agent of machine m2');
    expect(f!.detail).toContain('m2 is drained');
    expect(f!.detail).toContain('s01-m2 (replica) is STOPPED');
    expect(f!.detail).toContain('stalled: replica refuses connections');
  });

  it('refuses a master whose sync log could not record some changes: they would not reach the new master', () => {
    const f = fire(view('preflight', { from: { backlog: { ...EMPTY_BACKLOG, unloggedSince: '2026-12-05T01:16:07.375Z' } } }));
    expect(f).toMatchObject({ to: 'refused', state: 'refused' });
    expect(f!.detail).toContain('s01-m1 may have changes its sync log could not record (since 2026-12-05T01:16:07.375Z');
    expect(f!.detail).toContain('free space on it');
  });

  it('waits instead of refusing while a restarted coordinator gives agents time to reconnect', () => {
    expect(fire(view('preflight', { connected: [], inGrace: true }))).toBeUndefined();
    expect(fire(view('preflight', { inGrace: true }))).toMatchObject({ to: 'catch-up' });
    expect(fire(view('catch-up', { connected: [], inGrace: true }))).toBeUndefined();
    expect(fire(view('preflight', { connected: [] }))).toMatchObject({ to: 'refused' });
  });

  it('lets rolling replication drain a backlog over 4 KiB before the old master stops, for at most 5 s of its own', () => {
    const backlog = { ...EMPTY_BACKLOG, files: 1, bytes: 600_000, mailboxes: 40 };
    // preflight passes whatever the backlog (within --max-backlog); the catch-up step began at 100 ms: 200 ms in, it waits, and says why
    expect(fire(view('preflight', { from: { backlog } }))).toMatchObject({ to: 'catch-up' });
    expect(fire(view('catch-up', { from: { backlog } }))).toBeUndefined();
    expect(switchoverWaiting(view('catch-up', { from: { backlog } }))).toMatch(/^rolling replication to drain the backlog of s01-m1 \(600000 bytes, 1 file\(s\)\) to 4 KiB before it stops/);
    expect(fire(view('catch-up', { from: { backlog: { ...backlog, bytes: 4096 } } }))).toMatchObject({ to: 'stop-master', action: 'hold-old-master' });
    expect(fire(view('catch-up', { from: { backlog }, now: 5100 }))).toMatchObject({ to: 'stop-master', detail: expect.stringContaining('the replay takes the rest') });
    // a problem appearing meanwhile refuses it: nothing was touched yet
    expect(fire(view('catch-up', { from: { backlog: { ...backlog, stalled: true, stallReason: 'replica refuses connections' } } }))).toMatchObject({ to: 'refused', action: 'none' });
  });

  it('ends a switchover cancelled in preflight or catch-up as cancelled, or timed out in catch-up as failed, without touching anything', () => {
    const backlog = { ...EMPTY_BACKLOG, files: 1, bytes: 600_000 };
    expect(fire(view('preflight', { slotsFree: 0, op: { cancelRequested: true } }))).toMatchObject({ to: 'rolled-back', action: 'finish', state: 'cancelled' });
    expect(fire(view('catch-up', { from: { backlog }, op: { cancelRequested: true } }))).toMatchObject({ to: 'rolled-back', action: 'finish', state: 'cancelled' });
    expect(fire(view('catch-up', { from: { backlog }, now: 121_000 }))).toMatchObject({ to: 'rolled-back', action: 'finish', state: 'failed', detail: expect.stringContaining('no flip within 120 s') });
    // queued in preflight (no free slot) past the timeout: it waits, as before
    expect(fire(view('preflight', { slotsFree: 0, now: 121_000 }))).toBeUndefined();
  });

  it('waits in preflight while as many switchovers as allowed are under way', () => {
    expect(fire(view('preflight', { slotsFree: 0 }))).toBeUndefined();
    expect(fire(view('preflight', { slotsFree: 0, connected: [] }))).toMatchObject({ to: 'refused' }); // problems still refuse
  });

  it('refuses a backlog over the limit and a replica at another epoch', () => {
    expect(fire(view('preflight', { from: { backlog: { ...EMPTY_BACKLOG, files: 3, mailboxes: 5000 } } }))!.detail).toContain('names 5000 mailboxes (limit 1000)');
    expect(fire(view('preflight', { to: { epochApplied: 3 } }))!.detail).toContain('at epoch 3, not serving as replica at epoch 4');
  });

  it('waits for a fresh STOPPED report before replaying', () => {
    expect(fire(view('stop-master', { from: { observedState: 'SERVING' } }))).toBeUndefined();
    expect(fire(view('stop-master', { from: { observedState: 'STOPPED', reportedAt: iso(50) } }))).toBeUndefined(); // older than the step
    expect(fire(view('stop-master', { from: { observedState: 'STOPPED', reportedAt: iso(150) } }))).toMatchObject({ to: 'replay', action: 'request-replay' });
  });

  it('rolls back when the replay fails, naming the file', () => {
    const replayResult = { op: 'sw-1', ok: false, replayed: [], failedFile: 'log-run', error: 'replica 10.0.1.2:2005 refuses connections', finishedAt: iso(150), ms: 3 };
    const f = fire(view('replay', { from: { observedState: 'STOPPED', results: { replay: replayResult } } }));
    expect(f).toMatchObject({ to: 'rollback', action: 'release-hold' });
    expect(f!.detail).toContain('replay of log-run to s01-m2 failed: replica 10.0.1.2:2005 refuses connections');
  });

  it('ignores the result of an earlier replay', () => {
    const replayResult = { op: 'replay-old', ok: true, replayed: [], failedFile: '', error: '', finishedAt: iso(0), ms: 1 };
    expect(fire(view('replay', { from: { observedState: 'STOPPED', results: { replay: replayResult } } }))).toBeUndefined();
  });

  const box = { name: 'user.alice', exists: true, uniqueid: 'u1', messages: 10, uidvalidity: 7, lastUid: 10, highestModseq: 21 };
  const replayed = { op: 'sw-1', ok: true, replayed: ['log'], failedFile: '', error: '', finishedAt: iso(150), ms: 30, mailboxes: [box] };

  it('flips only when the replica holds the replayed mailboxes exactly', () => {
    const waiting = view('verify', { from: { observedState: 'STOPPED', results: { replay: replayed } } });
    expect(fire(waiting)).toBeUndefined();
    const same = view('verify', { from: { observedState: 'STOPPED', results: { replay: replayed } }, to: { observedRole: 'REPLICA', results: { check: { op: 'sw-1', mailboxes: [box], error: '' } } } });
    expect(fire(same)).toMatchObject({ to: 'flip', action: 'flip' });
    const short = view('verify', { from: { observedState: 'STOPPED', results: { replay: replayed } }, to: { observedRole: 'REPLICA', results: { check: { op: 'sw-1', mailboxes: [{ ...box, messages: 9, lastUid: 9 }], error: '' } } } });
    const f = fire(short);
    expect(f).toMatchObject({ to: 'rollback' });
    expect(f!.detail).toContain('user.alice: messages 10 on the master, 9 on the replica');
  });

  it('does not flip while a sync log is left', () => {
    expect(fire(view('verify', { from: { observedState: 'STOPPED', results: { replay: { ...replayed, mailboxes: [] } }, backlog: { ...EMPTY_BACKLOG, files: 1 } } }))).toBeUndefined();
    expect(fire(view('verify', { from: { observedState: 'STOPPED', results: { replay: { ...replayed, mailboxes: [] } } } }))).toMatchObject({ to: 'flip' });
  });

  it('rolls back on cancel and on timeout before the flip, never after it', () => {
    expect(fire(view('replay', { op: { cancelRequested: true } }))).toMatchObject({ to: 'rollback', detail: 'an operator cancelled the switchover' });
    expect(fire(view('verify', { now: 130_000 }))).toMatchObject({ to: 'rollback' });
    expect(fire(view('start', { now: 130_000, op: { cancelRequested: true, stepSince: iso(100_000) } }))).toBeUndefined();
  });

  it('after the flip: waits for both new roles, then for a marker to reach the new replica', () => {
    const flipped = { masterSlot: 's01-m2', replicaSlot: 's01-m1', epoch: 5 };
    expect(fire(view('flip', { store: flipped }))).toMatchObject({ to: 'start' });
    const started = { from: { observedRole: 'REPLICA', epochApplied: 5 }, to: { observedRole: 'MASTER', epochApplied: 5 }, store: flipped };
    expect(fire(view('start', started))).toMatchObject({ to: 'confirm' });
    expect(fire(view('confirm', started))).toBeUndefined();
    expect(fire(view('confirm', { ...started, to: { ...started.to, syncConfirmedEpoch: 5 } }))).toMatchObject({ to: 'done', state: 'succeeded' });
    expect(fire(view('confirm', { ...started, now: 100_000 }))).toMatchObject({ to: 'done', state: 'failed' });
  });

  it('ends a rollback only on a report from after it began', () => {
    expect(fire(view('rollback', { from: { reportedAt: iso(50) } }))).toBeUndefined();
    expect(fire(view('rollback', { from: { reportedAt: iso(150) } }))).toMatchObject({ to: 'rolled-back', action: 'finish' });
  });

  it('compares mailbox summaries field by field', () => {
    expect(mailboxDifferences([box], [box])).toEqual([]);
    expect(mailboxDifferences([box], [{ ...box, exists: false }])).toEqual(['user.alice: missing on the replica']);
    expect(mailboxDifferences([{ ...box, exists: false }], [{ ...box, exists: false, messages: 3 }])).toEqual([]);
    expect(mailboxDifferences([box], [])).toEqual(['user.alice: not checked on the replica']);
  });
});

describe('switchover waits, and says why', () => {
  it('in preflight: no free slot, a cleanup, the restart grace', () => {
    expect(switchoverWaiting({ ...view('preflight', { slotsFree: 0 }), maxSwitchovers: 4 })).toBe('no free switchover slot (4 running, limit 4: --max-switchovers)');
    expect(switchoverWaiting(view('preflight', { to: { requests: { cleanup: { kind: 'cleanup', id: 'cl-1' } }, cleanupStartedAt: '2026-11-29T02:13:00.000Z' } }))).toBe('a cleanup runs on s01-m2 (cyr_expire since 02:13:00)');
    const grace = { ...view('preflight', { connected: [], inGrace: true }), graceUntil: T0 + 6000 };
    expect(switchoverWaiting(grace)).toMatch(/^agents may still be reconnecting to the restarted coordinator \(grace until 10:00:06\): the agent of machine m1/);
  });

  it('at a step that waits for an agent: which slot, which result', () => {
    expect(switchoverWaiting(view('stop-master', { from: { observedState: 'STOPPED', reportedAt: iso(50) } }))).toBe('s01-m1 to report STOPPED (last report: STOPPED, from before this step)');
    expect(switchoverWaiting(view('replay'))).toMatch(/^the agent of m1 to replay the leftover sync logs of s01-m1 to s01-m2/);
    expect(switchoverWaiting(view('confirm'))).toBe('a marker change written on s01-m2 to reach s01-m1, until 10:01:00');
  });

  it('is the kind the runner finds, with its cancel policy and crash names', () => {
    expect(SWITCHOVER.rules).toBe(SWITCHOVER_RULES);
    expect(SWITCHOVER.crashName('stop-master')).toBe('stop-master');
    expect(SWITCHOVER.cancelRefusal(view('verify').op)).toBeUndefined();
    expect(SWITCHOVER.cancelRefusal(view('start').op)?.message).toBe('operation sw-1 is past the flip (at step start): it completes, it cannot be rolled back');
  });
});
