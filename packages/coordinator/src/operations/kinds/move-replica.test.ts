// The replica-move rule table over hand-made snapshots (pure logic: no database, no agents).
import { describe, expect, it } from 'vitest';
import type { MachineRow, MailboxSummaryRow, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import { T0, iso, machine, slot } from '../rows.fixture.js';
import { entryAction, decide } from '../framework/rule.js';
import { MOVE_REPLICA, MOVE_REPLICA_RULES, moveReplicaWaiting, type MoveReplicaView } from './move-replica.js';

const mbox = (name: string, messages: number, modseq = messages): MailboxSummaryRow => ({ name, exists: true, uniqueid: `u-${name}`, messages, uidvalidity: 1, lastUid: messages, highestModseq: modseq });

interface Over {
  master?: Partial<SlotRow>;
  target?: Partial<SlotRow> | null;
  store?: Partial<StoreRow>;
  masterMachine?: Partial<MachineRow>;
  targetMachine?: Partial<MachineRow>;
  connected?: string[];
  now?: number;
  result?: Record<string, unknown>;
  cancel?: boolean;
  error?: string;
  seedWait?: string;
}

function view(step: string, over: Over = {}): MoveReplicaView {
  const op: OperationRow = {
    id: 'mv-1', kind: 'move-replica', store: 's01', machine: 'm3', state: 'running', step, stepSince: iso(100), params: {}, result: over.result ?? {}, error: over.error ?? '', parent: null,
    cancelRequested: over.cancel ?? false, createdAt: iso(0), updatedAt: iso(100), waiting: '',
  };
  const result = over.result ?? {};
  return {
    now: T0 + (over.now ?? 200),
    op,
    params: { master: 's01-m1', masterMachine: 'm1', oldReplica: 's01-m2', oldMachine: 'm2', target: 's01-m3', targetMachine: 'm3', ip: '10.0.3.9', dataPath: '/srv/m3/s01/data', metaPath: '/srv/m3/s01/meta', timeoutMs: 3_600_000, verifyTimeoutMs: 120_000 },
    store: { name: 's01', serviceIp: '10.0.9.1', masterSlot: 's01-m1', replicaSlot: 's01-m2', epoch: 6, ...over.store },
    master: slot('s01-m1', 'm1', { observedState: 'SERVING', observedRole: 'MASTER', epochApplied: 6, ...over.master }),
    target: over.target === null ? undefined : slot('s01-m3', 'm3', { observedState: 'SERVING', observedRole: 'REPLICA', epochApplied: 6, seeding: 'mv-1', ...over.target }),
    masterMachine: { ...machine('m1'), ...over.masterMachine },
    targetMachine: { ...machine('m3'), ...over.targetMachine },
    connected: new Set(over.connected ?? ['m1', 'm3']),
    checkId: typeof result.checkId === 'string' ? result.checkId : '',
    createdEpoch: Number(result.createdEpoch ?? 0),
    switchedEpoch: Number(result.switchedEpoch ?? 0),
    copyingSince: Number(result.copyingSince ?? 0),
    switchedAt: Number(result.switchedAt ?? 0),
    seedWait: over.seedWait ?? '',
  };
}

const fire = (v: MoveReplicaView) => {
  const f = decide(MOVE_REPLICA_RULES, v);
  return f && { to: f.rule.to, action: f.rule.action, state: typeof f.rule.state === 'function' ? f.rule.state(v) : f.rule.state, detail: f.detail };
};
const seed = (op: string, ok: boolean) => ({ op, ok, users: 3, mailboxes: 5, messages: 90, ms: 400, error: ok ? '' : '1 of 3 did not copy', failed: ok ? [] : ['bob'], finishedAt: iso(150) });
const check = (id: string, mailboxes: MailboxSummaryRow[]) => ({ results: { check: { op: id, mailboxes, error: '' } } });

describe('replica-move rules', () => {
  it('adds the new slot when both machines are up and the master serves; refuses with every reason otherwise', () => {
    expect(fire(view('preflight', { target: null }))).toMatchObject({ to: 'create', action: 'create-slot' });
    const refused = fire(view('preflight', { target: null, connected: ['m1'], master: { observedState: 'STOPPED' }, store: { replicaSlot: 's01-m4' } }));
    expect(refused).toMatchObject({ to: 'done', state: 'refused' });
    expect(refused!.detail).toMatch(/m3 \(new replica\) is not up/);
    expect(refused!.detail).toMatch(/s01-m1 is not serving as master/);
    expect(refused!.detail).toMatch(/replica is s01-m4 now/);
    expect(fire(view('preflight', { target: null, targetMachine: { drained: true } }))!.detail).toMatch(/m3 is drained/);
    expect(fire(view('preflight', { target: null, cancel: true }))).toMatchObject({ to: 'done', state: 'cancelled' });
    // no free seed slot: it waits in preflight, saying which limit holds it
    const held = view('preflight', { target: null, seedWait: 'no free seed slot (2 running, limit 2: --max-seeds): mv-7, rr-2' });
    expect(fire(held)).toBeUndefined();
    expect(moveReplicaWaiting(held)).toMatch(/limit 2: --max-seeds/);
  });

  it('seeds only once the new slot serves as replica and the master applied the epoch of the create', () => {
    const created = { result: { createdEpoch: 7 }, store: { epoch: 7 } };
    expect(fire(view('create', { ...created, master: { epochApplied: 6 }, target: { epochApplied: 7 } }))).toBeUndefined();
    expect(fire(view('create', { ...created, master: { epochApplied: 7 }, target: { epochApplied: 7, observedState: 'STARTING' } }))).toBeUndefined();
    expect(fire(view('create', { ...created, master: { epochApplied: 7 }, target: { epochApplied: 7 } }))).toMatchObject({ to: 'seed', action: 'request-seed' });
  });

  it('abandons the new slot before the switch on a cancel, a failed seed, a lost store or machine, the time limit', () => {
    expect(fire(view('seed', { cancel: true }))).toMatchObject({ to: 'abandon', action: 'drop-slot' });
    // a failed seed is tried again 5 s after its failure, twice; the third failure abandons
    expect(fire(view('seed', { master: { results: { seed: seed('mv-1', false) } } }))).toBeUndefined();
    expect(fire(view('seed', { now: 5200, master: { results: { seed: seed('mv-1', false) } } }))).toMatchObject({ to: 'seed', action: 'retry-seed', detail: expect.stringMatching(/attempt 1 of 3/) });
    expect(fire(view('seed', { now: 5200, result: { seedAttempt: 2 }, master: { results: { seed: seed('mv-1', false) } } }))).toBeUndefined(); // the first attempt's result is not the second's
    expect(fire(view('seed', { result: { seedAttempt: 3 }, master: { results: { seed: seed('mv-1.seed-3', false) } } }))).toMatchObject({ to: 'abandon', detail: expect.stringMatching(/not copied: bob.*attempt 3 of 3/) });
    expect(fire(view('seed', { result: { seedAttempt: 2 }, master: { results: { seed: seed('mv-1.seed-2', true) } } }))).toMatchObject({ to: 'verify' });
    expect(fire(view('verify', { store: { masterSlot: 's01-m2', replicaSlot: 's01-m1' } }))).toMatchObject({ to: 'abandon', detail: expect.stringMatching(/master changed to s01-m2/) });
    expect(fire(view('create', { targetMachine: { state: 'down' } }))).toMatchObject({ to: 'abandon', detail: 'machine m3 is down' });
    expect(fire(view('seed', { now: 3_700_000 }))).toMatchObject({ to: 'abandon', detail: 'not switched, and no progress for 3600 s (at step seed)' });
    // the hour counts from the create, not from a wait for a seed slot
    expect(fire(view('seed', { now: 3_700_000, result: { copyingSince: T0 + 200_000 } }))).toBeUndefined();
    // and from the copy's last progress report: a large store copies for hours
    const progress = { op: 'mv-1', usersDone: 9, users: 20, mailboxesDone: 9, mailboxes: 20, messagesDone: 9, messages: 20, bytesDone: 9, bytes: 20, startedAt: iso(0), updatedAt: iso(3_000_000) };
    expect(fire(view('seed', { now: 3_700_000, master: { results: { 'seed-progress': progress } } }))).toBeUndefined();
    expect(fire(view('seed', { now: 6_700_000, master: { results: { 'seed-progress': progress } } }))).toMatchObject({ to: 'abandon' });
    // a blip (suspect, or the agent reconnecting) does not abandon an hour-long seed
    expect(fire(view('seed', { targetMachine: { state: 'suspect' }, connected: ['m1'] }))).toBeUndefined();
    // after the switch nothing abandons: forward only
    expect(fire(view('catch-up', { cancel: true, store: { replicaSlot: 's01-m3' } }))).toBeUndefined();
    expect(MOVE_REPLICA.cancelRefusal(view('catch-up').op)?.message).toMatch(/past its switch/);
    expect(MOVE_REPLICA.cancelRefusal(view('verify').op)).toBeUndefined();
  });

  it('ends an abandoned move once the new slot left the cluster: failed, or cancelled when a cancel caused it', () => {
    expect(fire(view('abandon'))).toBeUndefined();
    expect(fire(view('abandon', { target: null, error: 'initial sync failed' }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/keeps s01-m2 as replica: initial sync failed/) });
    expect(fire(view('abandon', { target: null, cancel: true }))).toMatchObject({ to: 'done', state: 'cancelled' });
  });

  it('summarizes the master, then the new slot 1.5 s later; switches when it holds what the master held, or newer', () => {
    const asked = { checkId: 'mv-1.1', checkAskedAt: T0 + 100, masterSeenAt: 0, targetAsked: '' };
    // the master's summary arrives: its time is noted, the new slot is asked only 1.5 s later
    expect(fire(view('verify', { result: asked, master: check('mv-1.1', [mbox('user.ann', 30)]) }))).toMatchObject({ to: 'verify', action: 'note-master' });
    const seen = { ...asked, masterSeenAt: T0 + 200 };
    expect(fire(view('verify', { result: seen, master: check('mv-1.1', [mbox('user.ann', 30)]), now: 1000 }))).toBeUndefined();
    expect(fire(view('verify', { result: seen, master: check('mv-1.1', [mbox('user.ann', 30)]), now: 1800 }))).toMatchObject({ to: 'verify', action: 'request-target-check' });
    const both = { ...seen, targetAsked: 'mv-1.1' };
    // newer on the new slot (mail arrived meanwhile) is caught up; an older modseq or a missing mailbox is not
    expect(fire(view('verify', { result: both, now: 2000, master: check('mv-1.1', [mbox('user.ann', 30)]), target: check('mv-1.1', [mbox('user.ann', 32)]) }))).toMatchObject({ to: 'switch', action: 'switch-replica' });
    const behind = { result: both, master: check('mv-1.1', [mbox('user.ann', 30), mbox('user.ben', 3)]), target: check('mv-1.1', [mbox('user.ann', 30, 29)]) };
    expect(fire(view('verify', { ...behind, now: 2000 }))).toBeUndefined(); // asked 1.9 s ago: the answer stands until 2 s passed
    const again = fire(view('verify', { ...behind, now: 2500 }));
    expect(again).toMatchObject({ to: 'verify', action: 'request-check' });
    expect(again!.detail).toMatch(/user.ann: last UID 30, modseq 29 on the new slot, behind the master's 30, 30; user.ben: missing on the new slot/);
    expect(fire(view('verify', { ...behind, now: 130_000 }))).toMatchObject({ to: 'abandon', detail: expect.stringMatching(/still 2 difference/) });
    expect(moveReplicaWaiting(view('verify', { result: seen, master: check('mv-1.1', [mbox('user.ann', 30)]) }))).toBe('1500 ms of replication before s01-m3 is summarized');
  });

  it('after the switch: catches up once the master applied it, then confirms; failures end it failed, forward only', () => {
    const switched = { result: { switchedEpoch: 8 }, store: { replicaSlot: 's01-m3', epoch: 8 } };
    expect(fire(view('switch', { ...switched, master: { epochApplied: 7 } }))).toBeUndefined();
    expect(fire(view('switch', { ...switched, master: { epochApplied: 8 } }))).toMatchObject({ to: 'catch-up', action: 'request-catch-up' });
    expect(fire(view('switch', { ...switched, master: { epochApplied: 7 }, now: 70_000 }))).toMatchObject({ to: 'done', state: 'failed' });
    // the store changed before the switch could be written (a failover between the record and the action)
    expect(fire(view('switch', { store: { masterSlot: 's01-m2', replicaSlot: 's01-m1' } }))).toMatchObject({ to: 'abandon' });
    expect(fire(view('catch-up', { ...switched, master: { epochApplied: 8, results: { seed: seed('mv-1.catch-up', true) } } }))).toMatchObject({ to: 'confirm', action: 'request-check' });
    expect(fire(view('catch-up', { ...switched, master: { epochApplied: 8, results: { seed: seed('mv-1', true) } } }))).toBeUndefined();
    expect(fire(view('catch-up', { ...switched, now: 5200, master: { epochApplied: 8, results: { seed: seed('mv-1.catch-up', false) } } }))).toMatchObject({ to: 'catch-up', action: 'retry-catch-up' });
    expect(fire(view('catch-up', { ...switched, result: { ...switched.result, catchUpAttempt: 3 }, master: { epochApplied: 8, results: { seed: seed('mv-1.catch-up-3', false) } } }))).toMatchObject({ to: 'done', state: 'failed' });
    const result = { ...switched.result, checkId: 'mv-1.2', checkAskedAt: T0 + 100, masterSeenAt: T0 + 150, targetAsked: 'mv-1.2' };
    expect(fire(view('confirm', { store: switched.store, result, master: check('mv-1.2', [mbox('user.ann', 30)]), target: check('mv-1.2', [mbox('user.ann', 30)]) }))).toMatchObject({ to: 'done', state: 'succeeded', action: 'finish' });
  });

  it('after the switch, ends when the master is lost (a failover must not wait for it) or after an hour; a failed create abandons', () => {
    const switched = { result: { switchedEpoch: 8, switchedAt: T0 + 100 }, store: { replicaSlot: 's01-m3', epoch: 8 } };
    expect(fire(view('catch-up', { ...switched, masterMachine: { state: 'down' } }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/machine m1 is down/) });
    // a failover made the new slot master: the move ends (it would otherwise hold the store for an hour)
    expect(fire(view('confirm', { ...switched, store: { ...switched.store, masterSlot: 's01-m3', replicaSlot: 's01-m1' } }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/master is s01-m3 now/) });
    expect(fire(view('confirm', { ...switched, store: { ...switched.store, masterSlot: 's01-m9' } }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/is s01-m9 now/) });
    expect(fire(view('catch-up', { ...switched, now: 3_700_000 }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/3600 s after the switch/) });
    expect(fire(view('create', { target: null, result: { createError: 's01-m3 could not be added: UNIQUE constraint failed: slots.ip' } }))).toMatchObject({ to: 'abandon', detail: expect.stringMatching(/UNIQUE/) });
    // a refusal is judged only once a seed slot is free: a wait for one refuses nothing
    expect(fire(view('preflight', { target: null, connected: ['m1'], seedWait: 'no free seed slot (1 running, limit 1: --max-seeds): mv-7' }))).toBeUndefined();
  });

  it('resumes every step by the action that entered it', () => {
    expect(entryAction(MOVE_REPLICA_RULES, 'create')).toBe('create-slot');
    expect(entryAction(MOVE_REPLICA_RULES, 'seed')).toBe('request-seed');
    expect(entryAction(MOVE_REPLICA_RULES, 'switch')).toBe('switch-replica');
    expect(entryAction(MOVE_REPLICA_RULES, 'catch-up')).toBe('request-catch-up');
    expect(entryAction(MOVE_REPLICA_RULES, 'abandon')).toBe('drop-slot');
  });

  it('says why it waits', () => {
    expect(moveReplicaWaiting(view('seed'))).toBe('s01-m1 to copy every user to s01-m3 (sync_client -u), until 11:00:00 without progress');
    expect(moveReplicaWaiting(view('abandon'))).toBe('s01-m3 to leave the cluster');
  });
});
