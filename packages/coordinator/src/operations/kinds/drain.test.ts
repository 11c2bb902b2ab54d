// The drain (and rebalance) rule table over hand-made snapshots (pure logic: no database, no agents).
import { describe, expect, it } from 'vitest';
import type { OperationRow } from '../../db/rows.js';
import { T0, iso, slot } from '../rows.fixture.js';
import { decide } from '../framework/rule.js';
import { DRAIN, DRAIN_RULES, REBALANCE, drainProgress, drainWaiting, storesToLaunch, type DrainView } from './drain.js';

describe('drain rules', () => {
  const stores = new Map(['a', 'b', 'c'].map((n) => [n, { name: n, serviceIp: '', masterSlot: `${n}-m1`, replicaSlot: `${n}-m2`, epoch: 1 }]));
  const slots = new Map(['a', 'b', 'c'].flatMap((n) => [[`${n}-m1`, slot(`${n}-m1`, 'm1')], [`${n}-m2`, slot(`${n}-m2`, 'm2')]] as const));
  const child = (store: string, state: OperationRow['state'], error = ''): OperationRow => ({
    id: `sw-${store}`, kind: 'switchover', store, machine: null, state, step: state === 'running' ? 'replay' : 'done', stepSince: iso(0), params: {}, result: {}, error, parent: 'dr-1', cancelRequested: false, createdAt: iso(0), updatedAt: iso(0), waiting: '',
  });
  const dview = (step: string, children: OperationRow[], over: Partial<DrainView> = {}): DrainView => ({
    now: T0, op: { ...child('x', 'running'), id: 'dr-1', kind: 'drain', store: null, machine: 'm1', step, parent: null }, params: { machine: 'm1', parallel: 2, timeoutMs: 1000, stores: ['a', 'b', 'c'] },
    machineExists: true, stores, slots, children, ...over,
  });

  it('starts at most `parallel` switchovers at a time', () => {
    expect(storesToLaunch(dview('moving', []))).toEqual(['a', 'b']);
    expect(storesToLaunch(dview('moving', [child('a', 'running')]))).toEqual(['b']);
    expect(decide(DRAIN_RULES, dview('moving', [child('a', 'running'), child('b', 'running')]))).toBeUndefined();
  });

  it('ends with the stores that did not move and why', () => {
    const moved = new Map(slots);
    moved.set('a-m1', slot('a-m1', 'm1'));
    const movedStores = new Map(stores);
    movedStores.set('a', { ...stores.get('a')!, masterSlot: 'a-m2' });
    movedStores.set('c', { ...stores.get('c')!, masterSlot: 'c-m2' });
    const v = dview('moving', [child('a', 'succeeded'), child('b', 'failed', 'replay failed'), child('c', 'succeeded')], { stores: movedStores, slots: moved });
    expect(drainProgress(v)).toMatchObject({ moved: ['a', 'c'], failed: [{ store: 'b', error: 'replay failed' }] });
    expect(decide(DRAIN_RULES, v)).toMatchObject({ rule: { to: 'done', state: 'failed' } });
  });

  it('refuses an unknown machine and cancels running children on cancel', () => {
    expect(decide(DRAIN_RULES, dview('preflight', [], { machineExists: false }))).toMatchObject({ rule: { state: 'refused' } });
    const v = dview('moving', [child('a', 'running')]);
    v.op.cancelRequested = true;
    expect(decide(DRAIN_RULES, v)).toMatchObject({ rule: { to: 'cancelling', action: 'cancel-children' } });
  });

  it('waits for its running switchovers and says how many stores wait for a turn', () => {
    expect(drainWaiting(dview('moving', [child('a', 'running'), child('b', 'running')]))).toBe('2 switchover(s) running (a, b), 1 store(s) waiting for a turn (--parallel 2); 0 moved, 0 not moved');
    expect(drainWaiting(dview('cancelling', [child('a', 'running')]))).toBe('1 switchover(s) running (a) to end');
  });

  it('drain and rebalance share the table and the crash names', () => {
    expect(REBALANCE.rules).toBe(DRAIN.rules);
    expect(DRAIN.crashName('moving')).toBe('drain-moving');
    expect(REBALANCE.crashName('done')).toBe('drain-done');
  });
});
