// The recovery rule table over hand-made snapshots (pure logic: no database, no agents).
import { describe, expect, it } from 'vitest';
import type { AtRiskRow, OperationRow, SlotRow } from '../../db/rows.js';
import { EMPTY_BACKLOG } from '../../db/rows.js';
import { T0, iso, machine, slot } from '../rows.fixture.js';
import { decide } from '../framework/rule.js';
import { RECOVERY, RECOVERY_RULES, recoveryWaiting, type RecoveryView } from './recovery.js';

const atRisk: AtRiskRow = {
  id: 7, store: 's01', slot: 's01-m1', machine: 'm1', op: 'fo-1', epoch: 5, createdAt: iso(0), backlog: { ...EMPTY_BACKLOG, reportedAt: iso(0) }, state: 'open', mailboxes: ['user.ann'], result: undefined, closedAt: null,
} as unknown as AtRiskRow;

function view(step: string, over: { old?: Partial<SlotRow>; target?: Partial<SlotRow>; now?: number; connected?: string[]; error?: string } = {}): RecoveryView {
  const op: OperationRow = {
    id: 'rc-1', kind: 'recover', store: 's01', machine: null, state: 'running', step, stepSince: iso(100), params: {}, result: {}, error: over.error ?? '', parent: null,
    cancelRequested: false, createdAt: iso(0), updatedAt: iso(100), waiting: '',
  };
  return {
    now: T0 + (over.now ?? 200),
    op,
    params: { old: 's01-m1', target: 's01-m2', oldMachine: 'm1', targetMachine: 'm2', atRisk: 7, mailboxes: ['user.ann'], timeoutMs: 600_000 },
    store: { name: 's01', serviceIp: '10.0.3.1', masterSlot: 's01-m2', replicaSlot: 's01-m1', epoch: 5 },
    old: slot('s01-m1', 'm1', { observedState: 'STOPPED', observedRole: 'REPLICA', epochApplied: 5, quarantine: { files: ['log'], mailboxes: ['user.ann'] } as never, ...over.old }),
    target: slot('s01-m2', 'm2', { observedRole: 'MASTER', epochApplied: 5, ...over.target }),
    oldMachine: machine('m1'),
    targetMachine: machine('m2'),
    atRisk,
    connected: new Set(over.connected ?? ['m1', 'm2']),
  };
}

const fire = (v: RecoveryView) => {
  const f = decide(RECOVERY_RULES, v);
  return f && { to: f.rule.to, action: f.rule.action, state: f.rule.state, detail: f.detail };
};

const result = (mailboxes: { name: string; result: string; missing: number }[], done = true) => ({ op: 'rc-1', done, error: '', mailboxes: mailboxes.map((m) => ({ detail: '', ...m })) });

describe('recovery rules', () => {
  it('opens the listener when the old master is back as a stopped replica with its quarantine', () => {
    expect(fire(view('preflight'))).toMatchObject({ to: 'listen', action: 'open-listener' });
    expect(fire(view('preflight', { connected: ['m2'] }))).toMatchObject({ to: 'refused', detail: expect.stringMatching(/has not returned yet/) });
  });

  it('asks for the push once the new master listens, closes with the result', () => {
    expect(fire(view('listen'))).toBeUndefined();
    expect(fire(view('listen', { target: { recoverListening: 'rc-1' } }))).toMatchObject({ to: 'push', action: 'request-push' });
    expect(fire(view('push'))).toBeUndefined();
    expect(fire(view('push', { old: { results: { 'recover-push': result([{ name: 'user.ann', result: 'pushed', missing: 0 }]) } as never } }))).toMatchObject({ to: 'close', action: 'close', detail: expect.stringMatching(/every message found on s01-m2/) });
    expect(fire(view('push', { old: { results: { 'recover-push': result([{ name: 'user.ann', result: 'pushed', missing: 2 }]) } as never } }))).toMatchObject({ to: 'close', detail: expect.stringMatching(/not: user.ann \(pushed, 2 message/) });
    expect(fire(view('push', { now: 700_000 }))).toMatchObject({ to: 'close', detail: 'no result within 600 s (at step push)' });
  });

  it('ends once the listener is closed', () => {
    const ok = { old: { results: { 'recover-push': result([{ name: 'user.ann', result: 'pushed', missing: 0 }]) } as never } };
    expect(fire(view('close', { ...ok, target: { recoverListening: 'rc-1' } }))).toBeUndefined();
    expect(fire(view('close', ok))).toMatchObject({ to: 'done', state: 'succeeded' });
    expect(fire(view('close', { target: { recoverListening: 'rc-1' }, now: 40_000 }))).toMatchObject({ to: 'done', state: 'failed' });
  });

  it('enters each step with one action only', () => {
    for (const step of new Set(RECOVERY_RULES.map((r) => r.to))) expect(new Set(RECOVERY_RULES.filter((r) => r.to === step).map((r) => r.action)).size, step).toBe(1);
  });

  it('says why it waits, and is never cancelled', () => {
    expect(recoveryWaiting(view('listen'))).toBe('s01-m2 to open its temporary sync_server for the recovery, until 10:10:00');
    expect(recoveryWaiting(view('push', { connected: ['m2'] }))).toBe('s01-m1 to push 1 mailbox(es) to s01-m2 and verify them (the agent of m1 is not connected), until 10:10:00');
    expect(RECOVERY.cancelRefusal(view('push').op)).toEqual({ message: 'operation rc-1 is a recovery: it only adds mail to the new master and ends at its timeout', hint: 'wait for it to end (slotctl operations show rc-1 --wait)' });
    expect(RECOVERY.crashName('listen')).toBe('recover-listen');
  });
});
