import { describe, expect, it } from 'vitest';
import type { DesiredSlot__Output } from '@slotctl/shared';
import { planApply } from './apply-plan.js';

const slot = (over: Partial<DesiredSlot__Output> = {}): DesiredSlot__Output => ({
  slot: 's01-m1',
  store: 's01',
  role: 'MASTER',
  epoch: 3,
  slotIp: '127.0.21.1',
  serviceIp: '127.0.20.1',
  peerSlot: 's01-m2',
  peerMachine: 'm2',
  peerIp: '127.0.22.1',
  dataPath: '/srv/m1/s01/data',
  metaPath: '/srv/m1/s01/meta',
  stopped: false,
  startGeneration: 0,
  requests: [],
  moveTargetIp: '',
  ...over,
});

describe('applying a desired state', () => {
  it('takes a moved replica\'s address on a master, refuses it on a replica or when it is not an address', () => {
    const moving = planApply({}, [slot({ moveTargetIp: '127.0.23.1' })]);
    expect(moving.next['s01-m1']?.moveTargetIp).toBe('127.0.23.1');
    expect(planApply(moving.next, [slot()]).results[0]?.result).toBe('CHANGED');
    expect(planApply({}, [slot({ role: 'REPLICA', moveTargetIp: '127.0.23.1' })]).results[0]).toMatchObject({ result: 'REFUSED', detail: expect.stringContaining('only a master') });
    expect(planApply({}, [slot({ moveTargetIp: '127.0.23.1; rm -rf /' })]).results[0]?.result).toBe('REFUSED');
    // no move: the same state as before the field existed
    expect(planApply({}, [slot()]).next['s01-m1']).not.toHaveProperty('moveTargetIp');
  });

  it('is idempotent: the same state twice changes nothing the second time', () => {
    const first = planApply({}, [slot()]);
    expect(first.results).toEqual([{ slot: 's01-m1', result: 'CHANGED', detail: 'new: MASTER@3' }]);
    const second = planApply(first.next, [slot()]);
    expect(second.results[0]?.result).toBe('UNCHANGED');
    expect(second.next).toEqual(first.next);
  });

  it('refuses an older epoch and keeps the newer one', () => {
    const applied = planApply({}, [slot({ epoch: 5 })]).next;
    const late = planApply(applied, [slot({ epoch: 4, role: 'REPLICA' })]);
    expect(late.results[0]).toMatchObject({ result: 'REFUSED', detail: expect.stringMatching(/stale epoch 4.*5/) });
    expect(late.next['s01-m1']?.epoch).toBe(5);
    expect(late.next['s01-m1']?.role).toBe('MASTER');
  });

  it('refuses a change of role that does not come with a new epoch', () => {
    const applied = planApply({}, [slot()]).next;
    expect(planApply(applied, [slot({ role: 'REPLICA' })]).results[0]?.result).toBe('REFUSED');
    expect(planApply(applied, [slot({ role: 'REPLICA', epoch: 4 })]).results[0]?.result).toBe('CHANGED');
  });

  it('refuses names and paths that must not reach the file system, without touching what was applied', () => {
    const applied = planApply({}, [slot()]).next;
    const bad = planApply(applied, [slot({ dataPath: '/srv/../etc' }), slot({ slot: '../x' })]);
    expect(bad.results.map((r) => r.result)).toEqual(['REFUSED', 'REFUSED']);
    expect(bad.results[0]?.detail).toMatch(/data_path/);
    expect(bad.next['s01-m1']).toEqual(applied['s01-m1']);
  });

  it('lists slots that are no longer desired', () => {
    const applied = planApply({}, [slot(), slot({ slot: 's02-m1', store: 's02' })]).next;
    expect(planApply(applied, [slot()]).removed).toEqual(['s02-m1']);
  });
});
