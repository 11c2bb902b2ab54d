// The cleanup schedule over hand-made snapshots (pure logic).
import { describe, expect, it } from 'vitest';
import type { PartitionRow } from '../db/rows.js';
import { machine, slot as slotRow } from '../operations/rows.fixture.js';
import { readCleanupConfig } from './config.js';
import { diskLevel, nextTurn, pickCleanups, slotDisks, type ScheduleInput } from './schedule.js';

/** A slot as the scheduler reads it: no cleanup request unless given. */
const slot = (...args: Parameters<typeof slotRow>) => ({ ...slotRow(...args), cleanupOp: '' });

const config = { ...readCleanupConfig(undefined), parallel: 2 };
const NOW = Date.parse('2026-11-30T03:00:00Z');
const disk = (name: string, path: string) => ({ name, path, class: 'hdd' });
const full = (pct: number): PartitionRow => ({ role: 'data', path: '/srv/d0/x/data', totalBytes: 100, freeBytes: 100 - pct, totalInodes: 100, freeInodes: 90, deletedBytes: 5, expungedBytes: 5, measuredAt: '', error: '' });

function input(over: Partial<ScheduleInput> = {}): ScheduleInput {
  return {
    now: NOW,
    config,
    machines: [machine('m1', { disks: [disk('d0', '/srv/d0'), disk('d1', '/srv/d1')] }), machine('m2')],
    connected: new Set(['m1', 'm2']),
    slots: [
      slot('a-m1', 'm1', { store: 'a', observedState: 'SERVING', dataPath: '/srv/d0/a/data', metaPath: '/srv/d0/a/meta', cleanupRequested: 'operator' }),
      slot('b-m1', 'm1', { store: 'b', observedState: 'SERVING', dataPath: '/srv/d0/b/data', metaPath: '/srv/d0/b/meta', cleanupRequested: 'operator' }),
      slot('c-m1', 'm1', { store: 'c', observedState: 'SERVING', dataPath: '/srv/d1/c/data', metaPath: '/srv/d1/c/meta', cleanupRequested: 'operator' }),
    ],
    busyStores: new Set(),
    lastEnded: new Map(),
    ...over,
  };
}

describe('cleanup schedule', () => {
  it('names the disks of a slot, or the whole machine when it declares none', () => {
    expect(slotDisks({ dataPath: '/srv/d0/a/data', metaPath: '/srv/d1/a/meta' }, machine('m1', { disks: [disk('d0', '/srv/d0'), disk('d1', '/srv/d1')] }))).toEqual(['d0', 'd1']);
    expect(slotDisks({ dataPath: '/x/data', metaPath: '/x/meta' }, machine('m2'))).toEqual(['(whole machine)']);
  });

  it('starts one slot per disk, up to the machine\'s parallel limit', () => {
    expect(pickCleanups(input()).map((p) => p.slot)).toEqual(['a-m1', 'c-m1']);
    expect(pickCleanups(input({ config: { ...config, parallel: 1 } })).map((p) => p.slot)).toEqual(['a-m1']);
    // a running cleanup holds its disk
    const running = input();
    running.slots = running.slots.map((s) => (s.name === 'a-m1' ? { ...s, cleanupOp: 'cl-1', cleanupRequested: '' } : s));
    expect(pickCleanups(running).map((p) => p.slot)).toEqual(['c-m1']);
  });

  it('waits while an operation touches the store, the machine is not up or connected, or the slot does not serve', () => {
    expect(pickCleanups(input({ busyStores: new Set(['a']) })).map((p) => p.slot)).toEqual(['b-m1', 'c-m1']);
    expect(pickCleanups(input({ connected: new Set(['m2']) }))).toEqual([]);
    const stopped = input();
    stopped.slots = stopped.slots.map((s) => ({ ...s, observedState: 'STOPPED' }));
    expect(pickCleanups(stopped)).toEqual([]);
  });

  it('runs the nightly turn when due and puts a full partition first', () => {
    const v = input();
    v.slots = [
      { ...v.slots[0]!, cleanupRequested: '', cleanupNextAt: '2026-11-30T02:30:00.000Z' },
      { ...v.slots[1]!, cleanupRequested: '', cleanupNextAt: '2026-11-30T04:30:00.000Z', partitions: [full(95)] },
      { ...v.slots[2]!, cleanupRequested: '', cleanupNextAt: '2026-11-30T04:30:00.000Z' },
    ];
    const picks = pickCleanups(v);
    expect(picks.map((p) => p.slot)).toEqual(['b-m1']); // full first; a-m1 shares its disk and waits
    expect(picks[0]!.reason).toMatch(/95 % full: cleaned first/);
    expect(diskLevel(full(85), config)).toBe('warning');
  });

  it('gives each slot its own minute in the window, the next one after now', () => {
    const at = nextTurn(NOW, config, 'a-m1');
    expect(at).toBeGreaterThan(NOW);
    const minute = new Date(at).getUTCHours() * 60 + new Date(at).getUTCMinutes();
    expect(minute).toBeGreaterThanOrEqual(120);
    expect(minute).toBeLessThan(300);
    expect(nextTurn(NOW, config, 'a-m1')).toBe(at);
  });
});
