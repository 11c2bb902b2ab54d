// The status page's model: only what the page draws, ages at the page's precision.
import { describe, expect, it } from 'vitest';
import { coarseAgeMs, pageModelJson, type PageSource } from './page-model.js';

describe('page model', () => {
  it('rounds ages to what the page shows, so that a frame changes only when what is seen changes', () => {
    expect(coarseAgeMs(0)).toBe(0);
    expect(coarseAgeMs(1234)).toBe(10_000);
    expect(coarseAgeMs(44_000)).toBe(40_000);
    expect(coarseAgeMs(45_000)).toBe(50_000);
    expect(coarseAgeMs(5 * 60_000 + 20_000)).toBe(5 * 60_000);
    expect(coarseAgeMs(3 * 3_600_000 + 100_000)).toBe(3 * 3_600_000);
  });

  it('keeps what the page draws and drops the rest (log lines, paths, report times, mailbox names)', () => {
    const slot = (name: string, machine: string) => ({ name, machine, ip: '10.0.0.1', state: 'SERVING', dataPath: '/srv/d', metaPath: '/srv/m', recentLog: ['a line'], reportedAt: '2026-12-04T10:00:00Z', backlog: { files: 3, bytes: 1000, mailboxes: 2, oldestChangeAgeMs: 12_345, stalled: false, stallReason: '', mailboxNames: ['user.a'] } });
    const source = {
      status: {
        healthy: true,
        problems: [],
        backend: 'sqlite x',
        term: 0,
        machines: [{ name: 'm1', state: 'up', drained: false, connected: true, slots: 1, masters: 1, fanOut: 1, stateSince: 't', lastHeartbeat: 'now', disks: [{}] }],
        stores: [{ name: 's1', health: 'ok', epoch: 3, problems: [], master: slot('s1-m1', 'm1'), replica: slot('s1-m2', 'm2') }],
        operations: [],
      },
      events: [],
    } as unknown as PageSource;
    const model = JSON.parse(pageModelJson(source)) as { status: { storeColumns: string[]; stores: unknown[][]; machines: Record<string, unknown>[] } };
    const store = Object.fromEntries(model.status.storeColumns.map((c, i) => [c, model.status.stores[0]![i]]));
    expect(store).toEqual({ name: 's1', health: 'ok', epoch: 3, masterSlot: 's1-m1', masterMachine: 'm1', masterState: 'SERVING', replicaSlot: 's1-m2', replicaMachine: 'm2', replicaState: 'SERVING', backlogFiles: 3, backlogBytes: 1000, stalled: 0, oldestChangeAgeMs: 10_000, problems: undefined });
    expect(model.status.machines[0]).not.toHaveProperty('lastHeartbeat');
    expect(model.status.machines[0]).not.toHaveProperty('disks');
  });
});
