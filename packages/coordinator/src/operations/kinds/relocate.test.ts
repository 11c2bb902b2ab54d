// The relocation rule table (machine add, evacuate, fan-out) over hand-made snapshots (pure logic: no database).
import { describe, expect, it } from 'vitest';
import type { OperationRow, StoreRow } from '../../db/rows.js';
import { T0, iso, slot } from '../rows.fixture.js';
import { decide, entryAction } from '../framework/rule.js';
import { EVACUATE, FANOUT, MACHINE_ADD, RELOCATE_RULES, relocateWaiting, taskStatuses, tasksToLaunch, type RelocateTask, type RelocateView } from './relocate.js';

// evacuate m1: a is mastered on m1 (replica m2), b and c have their replica on m1 (masters on m2, m3)
const storeRows = (over: Record<string, Partial<StoreRow>> = {}) =>
  new Map(
    [
      { name: 'a', serviceIp: '', masterSlot: 'a-m1', replicaSlot: 'a-m2', epoch: 1 },
      { name: 'b', serviceIp: '', masterSlot: 'b-m2', replicaSlot: 'b-m1', epoch: 1 },
      { name: 'c', serviceIp: '', masterSlot: 'c-m3', replicaSlot: 'c-m1', epoch: 1 },
    ].map((s) => [s.name, { ...s, ...over[s.name] }]),
  );
const slots = new Map(
  [
    ['a-m1', 'm1'], ['a-m2', 'm2'], ['a-m4', 'm4'], ['b-m2', 'm2'], ['b-m1', 'm1'], ['b-m4', 'm4'], ['c-m3', 'm3'], ['c-m1', 'm1'], ['c-m2', 'm2'],
  ].map(([n, m]) => [n!, slot(n!, m!)]),
);
const tasks: RelocateTask[] = [
  { store: 'a', action: 'switchover', from: 'm1', to: 'm2', phase: 0, reason: '' },
  { store: 'a', action: 'move-replica', from: 'm1', to: 'm4', phase: 1, reason: '' },
  { store: 'b', action: 'move-replica', from: 'm1', to: 'm4', phase: 1, reason: '' },
  { store: 'c', action: 'move-replica', from: 'm1', to: 'm2', phase: 1, reason: '' },
];
const child = (store: string, kind: 'switchover' | 'move-replica', state: OperationRow['state'], error = ''): OperationRow => ({
  id: `${kind === 'switchover' ? 'sw' : 'mv'}-${store}`, kind, store, machine: null, state, step: state === 'running' ? 'seed' : 'done', stepSince: iso(0), params: {}, result: {}, error, parent: 'ev-1', cancelRequested: false, createdAt: iso(0), updatedAt: iso(0), waiting: '',
});
const view = (step: string, children: OperationRow[], over: Partial<RelocateView> & { storeOver?: Record<string, Partial<StoreRow>>; result?: Record<string, unknown> } = {}): RelocateView => ({
  now: T0,
  op: { ...child('x', 'switchover', 'running'), id: 'ev-1', kind: 'evacuate', store: null, machine: 'm1', step, parent: null, result: over.result ?? {} },
  params: { machine: 'm1', parallel: 2, timeoutMs: 1000, tasks },
  machineExists: true,
  stores: storeRows(over.storeOver),
  slots,
  children,
  connected: new Set(['m1', 'm2', 'm3', 'm4']),
  inGrace: false,
  busy: new Set(),
  ...over,
});

describe('relocation rules', () => {
  it('marks an evacuated machine drained first, then runs phase by phase', () => {
    expect(decide(RELOCATE_RULES, view('preflight', []))).toMatchObject({ rule: { to: 'moving', action: 'mark-drained' } });
    // phase 0 (the switchover of a) before any move, even with room for more
    expect(tasksToLaunch(view('moving', []))).toEqual([tasks[0]]);
    expect(decide(RELOCATE_RULES, view('moving', [child('a', 'switchover', 'running')]))).toBeUndefined();
    // a switched: its master now on m2, the slot on m1 its replica; the moves start, two at a time
    const after = { a: { masterSlot: 'a-m2', replicaSlot: 'a-m1' } };
    expect(tasksToLaunch(view('moving', [child('a', 'switchover', 'succeeded')], { storeOver: after }))).toEqual([tasks[1], tasks[2]]);
    expect(tasksToLaunch(view('moving', [child('a', 'switchover', 'succeeded'), child('a', 'move-replica', 'running')], { storeOver: after }))).toEqual([tasks[2]]);
  });

  it('succeeds when nothing is left on the machine, and names each failure otherwise', () => {
    const done = { a: { masterSlot: 'a-m2', replicaSlot: 'a-m4' }, b: { replicaSlot: 'b-m4' }, c: { replicaSlot: 'c-m2' } };
    const all = [child('a', 'switchover', 'succeeded'), child('a', 'move-replica', 'succeeded'), child('b', 'move-replica', 'succeeded'), child('c', 'move-replica', 'succeeded')];
    expect(decide(RELOCATE_RULES, view('moving', all, { storeOver: done }))).toMatchObject({ rule: { to: 'done', state: 'succeeded' }, detail: '4 done, 0 failed' });
    const partly = { ...done, c: {} };
    const failed = [...all.slice(0, 3), child('c', 'move-replica', 'failed', 'seed failed 3 times')];
    expect(decide(RELOCATE_RULES, view('moving', failed, { storeOver: partly }))).toMatchObject({ rule: { to: 'done', state: 'failed' }, detail: '3 done, 1 failed: move-replica of c (seed failed 3 times)' });
  });

  it('counts a refused start as that task failed, and a store moved by someone else as done', () => {
    const v = view('moving', [child('a', 'switchover', 'succeeded')], { storeOver: { a: { masterSlot: 'a-m2', replicaSlot: 'a-m1' }, b: { replicaSlot: 'b-m4' } }, result: { conflicts: { 'move-replica:c': 'machine m2 is full' } } });
    const byStore = Object.fromEntries(taskStatuses(v).map((s) => [`${s.task.action}:${s.task.store}`, [s.state, s.detail]]));
    expect(byStore).toEqual({ 'switchover:a': ['done', ''], 'move-replica:a': ['waiting', ''], 'move-replica:b': ['done', ''], 'move-replica:c': ['failed', 'machine m2 is full'] });
  });

  it('a move whose switchover failed does not run: its master is still there', () => {
    const v = view('moving', [child('a', 'switchover', 'failed', 'replay failed')]);
    expect(taskStatuses(v)[0]).toMatchObject({ state: 'failed', detail: 'replay failed' });
    // phase 0 ended (failed): phase 1 starts; the launch itself refuses a's move (launchProblem), recorded as a conflict
    expect(tasksToLaunch(v).map((t) => `${t.action}:${t.store}`)).toEqual(['move-replica:a', 'move-replica:b']);
  });

  it('cancels running children and ends when none runs; refuses an unknown machine', () => {
    const v = view('moving', [child('a', 'switchover', 'running')]);
    v.op.cancelRequested = true;
    expect(decide(RELOCATE_RULES, v)).toMatchObject({ rule: { to: 'cancelling', action: 'cancel-children' } });
    expect(decide(RELOCATE_RULES, view('cancelling', [child('a', 'switchover', 'cancelled')]))).toMatchObject({ rule: { state: 'cancelled' } });
    expect(decide(RELOCATE_RULES, view('preflight', [], { machineExists: false }))).toMatchObject({ rule: { state: 'refused' } });
  });

  it('a task that only has to wait waits (grace, an agent not connected, a busy store) rather than fail', () => {
    expect(tasksToLaunch(view('moving', [], { inGrace: true }))).toEqual([]);
    const after = { a: { masterSlot: 'a-m2', replicaSlot: 'a-m1' } };
    // m4 (the target of a's and b's moves) not connected: only c's move starts
    const v = view('moving', [child('a', 'switchover', 'succeeded')], { storeOver: after, connected: new Set(['m1', 'm2', 'm3']) });
    expect(tasksToLaunch(v).map((t) => t.store)).toEqual(['c']);
    expect(relocateWaiting(v)).toMatch(/; machine m4's agent is not connected\); 1 done, 0 failed$/);
    expect(tasksToLaunch(view('moving', [child('a', 'switchover', 'succeeded')], { storeOver: after, busy: new Set(['a', 'b']) })).map((t) => t.store)).toEqual(['c']);
    // nothing fires while every waiting task waits: no event every evaluation
    expect(decide(RELOCATE_RULES, view('moving', [], { inGrace: true }))).toBeUndefined();
  });

  it('a child that did not succeed fails its task even when the store left the machine (a move switched, its catch-up failed)', () => {
    const moved = { a: { masterSlot: 'a-m2', replicaSlot: 'a-m4' } };
    const v = view('moving', [child('a', 'switchover', 'succeeded'), child('a', 'move-replica', 'failed', 'catch-up failed 3 times')], { storeOver: moved });
    expect(taskStatuses(v)[1]).toMatchObject({ state: 'failed', detail: 'catch-up failed 3 times' });
  });

  it('a resumed machine add re-entering `moving` does not drain its machine (only an evacuation does)', () => {
    const drained: string[] = [];
    const ctx = { storage: { machines: { setDrained: (m: string) => drained.push(m) } } } as unknown as Parameters<typeof MACHINE_ADD.actions.none>[1];
    const entry = entryAction(RELOCATE_RULES, 'moving')!;
    const add = view('moving', []);
    add.op.kind = 'machine-add';
    MACHINE_ADD.actions[entry](add, ctx);
    expect(drained).toEqual([]);
    EVACUATE.actions[entry](view('moving', []), ctx);
    expect(drained).toEqual(['m1']);
  });

  it('says which phase it is in, what runs and what waits', () => {
    expect(relocateWaiting(view('moving', [child('a', 'switchover', 'running')]))).toBe('phase 1 of 2: 1 running (switchover of a (sw-a)), 3 waiting (--parallel 2; moves also wait for a seed slot); 0 done, 0 failed');
  });

  it('the three kinds share the table; a fan-out and a machine add are not drained first', () => {
    expect(MACHINE_ADD.rules).toBe(EVACUATE.rules);
    expect(FANOUT.crashName('moving')).toBe('fanout-moving');
    const fan = view('preflight', []);
    fan.op.kind = 'fanout';
    fan.params = { ...fan.params, machine: '' };
    expect(decide(RELOCATE_RULES, fan)).toMatchObject({ rule: { to: 'moving', action: 'none' } });
  });
});
