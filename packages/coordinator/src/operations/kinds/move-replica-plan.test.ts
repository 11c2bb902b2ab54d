// What `slotctl store move-replica` checks before it starts, on a real database: the new slot's address (given, or
// the first free one of the target's slot_ips, not one another move asked for), and the refusals.
import { beforeEach, describe, expect, it } from 'vitest';
import { clusterStorage } from '../../db/cluster-storage.fixture.js';
import type { Storage } from '../../db/storage.js';
import type { KindContext } from '../framework/kind.js';
import { PLACEMENT_HEADROOM, previewMoveReplica, roomProblems, startMoveReplica } from './move-replica-plan.js';
import { kindContext, slot } from '../rows.fixture.js';
import type { PartitionRow } from '../../db/rows.js';

const slots = (s: string, n: number, a: string, b: string) => [
  { machine: a, ip: `127.0.7.${n}`, data_path: `/srv/${a}/${s}/data`, meta_path: `/srv/${a}/${s}/meta` },
  { machine: b, ip: `127.0.6.${n}`, data_path: `/srv/${b}/${s}/data`, meta_path: `/srv/${b}/${s}/meta` },
];
const CLUSTER = {
  machines: [
    { name: 'm1', address: '127.0.9.1', rack: 'r1' },
    { name: 'm2', address: '127.0.9.2', rack: 'r2' },
    { name: 'm3', address: '127.0.9.3', rack: 'r2', slot_ips: ['127.0.5.1-127.0.5.3'] },
    { name: 'm4', address: '127.0.9.4', rack: 'r1' },
  ],
  stores: [
    { name: 's1', service_ip: '127.0.8.1', master: 'm1', slots: slots('s1', 1, 'm1', 'm2') },
    { name: 's2', service_ip: '127.0.8.2', master: 'm1', slots: slots('s2', 2, 'm1', 'm2') },
    // m3 already holds 127.0.5.1 (its pool's first address) for a slot of its own
    { name: 's3', service_ip: '127.0.8.3', master: 'm2', slots: [{ machine: 'm2', ip: '127.0.7.3', data_path: '/srv/m2/s3/data', meta_path: '/srv/m2/s3/meta' }, { machine: 'm3', ip: '127.0.5.1', data_path: '/srv/m3/s3/data', meta_path: '/srv/m3/s3/meta' }] },
  ],
};

describe('a replica move before it starts', () => {
  const rows = clusterStorage(CLUSTER);
  let storage: Storage;
  let ctx: KindContext;
  beforeEach(() => {
    storage = rows.storage;
    ctx = kindContext(storage, { connected: () => new Set(['m1', 'm2', 'm3', 'm4']) });
  });

  it("takes the first free address of the target's slot_ips, skipping used ones and ones another move asked for", () => {
    const first = previewMoveReplica(ctx, { store: 's1', to: 'm3', ip: '' });
    // no disks declared: the old replica's paths, on the target
    expect(first.params).toMatchObject({ target: 's1-m3', ip: '127.0.5.2', dataPath: '/srv/m2/s1/data', metaPath: '/srv/m2/s1/meta' });
    expect(first.plan[0]).toMatch(/add s1-m3 on m3 \(127\.0\.5\.2;/);
    // another move asked for it (its slot not created yet: waiting for a seed slot): the next one gets .3, then none
    storage.operations.create({ id: 'mv-x', kind: 'move-replica', store: 's1', machine: 'm3', step: 'preflight', params: { ...first.params }, epoch: 1, reason: 'test' });
    expect(previewMoveReplica(ctx, { store: 's2', to: 'm3', ip: '' }).params.ip).toBe('127.0.5.3');
    expect(previewMoveReplica(ctx, { store: 's2', to: 'm3', ip: '127.0.5.2' }).problems).toContain('address 127.0.5.2 is in use (the replica move mv-x of s1): give the new slot an address of its own');
  });

  it('names every refusal: no address to take, the master\'s rack, its own machines, a busy store', () => {
    const noPool = previewMoveReplica(ctx, { store: 's1', to: 'm4', ip: '' }).problems;
    expect(noPool).toContain('the new slot needs an address of its own: give one with --ip, or declare addresses for new slots on m4 in the cluster file (slot_ips: [FIRST-LAST]) and apply it');
    expect(noPool).toContain("machine m4 stands in rack r1, as the master m1 does: a store's two slots stand in two racks");
    expect(previewMoveReplica(ctx, { store: 's1', to: 'm1', ip: '127.0.5.9' }).problems).toContain('machine m1 holds the master s1-m1: the replica must be on another machine');
    expect(previewMoveReplica(ctx, { store: 's1', to: 'm2', ip: '127.0.5.9' }).problems).toContain('machine m2 already holds the replica s1-m2');
    // partitions on the target: none may be, hold or lie inside another slot's (m3 holds /srv/m3/s3/…)
    expect(previewMoveReplica(ctx, { store: 's1', to: 'm3', ip: '', dataPath: '/srv/m3/s3/meta/x', metaPath: '/srv/m3/s1/meta' }).problems).toContain('/srv/m3/s3/meta/x overlaps /srv/m3/s3/meta of slot s3-m3 on m3: give other paths with --data-path and --meta-path');
    expect(previewMoveReplica(ctx, { store: 's1', to: 'm3', ip: '', dataPath: '/srv/m3/s1', metaPath: '/srv/m3/s1/meta' }).problems).toContain("the new slot's data path /srv/m3/s1 and meta path /srv/m3/s1/meta overlap: give other paths with --data-path and --meta-path");
    expect(() => previewMoveReplica(ctx, { store: 'nosuch', to: 'm3', ip: '' })).toThrow(/store "nosuch" is not in the cluster/);
    expect(() => previewMoveReplica(ctx, { store: 's1', to: 'm3', ip: '127.0.5.2; reboot' })).toThrow(/--ip/);
    // the machines are not up yet (no agent ever reported): a move does not start, and says why
    expect(() => startMoveReplica(ctx, { store: 's1', to: 'm3', ip: '' })).toThrow(/machine m1 \(master\) is not up with its agent connected/);
  });
});

describe('room on the target for a store\'s copy, as measured', () => {
  const GB = 1e9;
  const part = (role: 'data' | 'meta', path: string, over: Partial<PartitionRow> = {}): PartitionRow => ({
    role, path, totalBytes: 100 * GB, freeBytes: 60 * GB, totalInodes: 1_000_000, freeInodes: 900_000, deletedBytes: 0, expungedBytes: 0, measuredAt: '2026-12-07T10:00:00Z', error: '', ...over,
  });
  // the target m3 has one disk d0 at /srv/m3 (40 % used), the store's two slots measure 20 GB data, 2 GB meta
  const input = (over: Partial<Parameters<typeof roomProblems>[0]> = {}) => ({
    target: 'm3',
    disks: [{ name: 'd0', path: '/srv/m3', class: 'hdd' as const, size: 0 }],
    slotsThere: [slot('s9-m3', 'm3', { partitions: [part('data', '/srv/m3/s9/data'), part('meta', '/srv/m3/s9/meta')] })],
    storeSlots: [
      slot('s1-m1', 'm1', { partitions: [part('data', '/srv/m1/s1/data', { usedBytes: 20 * GB, usedInodes: 10_000 }), part('meta', '/srv/m1/s1/meta', { usedBytes: 2 * GB, usedInodes: 3_000 })] }),
      slot('s1-m2', 'm2', { partitions: [part('data', '/srv/m2/s1/data', { usedBytes: 19 * GB, usedInodes: 9_000 })] }),
    ],
    growthBytes: 0,
    dataPath: '/srv/m3/s1/data',
    metaPath: '/srv/m3/s1/meta',
    warnPct: 80,
    ...over,
  });

  it('adds the larger slot\'s bytes and inodes per partition with headroom, and the expected growth, to what the disk uses', () => {
    // 40 GB used + (20 + 2) × 1.2 = 66.4 GB: under 80 %
    expect(roomProblems(input())).toEqual([]);
    // with 20 GB expected growth: 86.4 %
    expect(roomProblems(input({ growthBytes: 20 * GB }))).toEqual([
      `disk d0 on m3 would be 86% full with the store's copy (bytes: 40.0 GB used of 100.0 GB, the store's copy 46.4 GB, measured with 20.0 GB expected growth and ${PLACEMENT_HEADROOM * 100}% headroom; the warning threshold is 80%): choose another machine or free space there`,
    ]);
    // inodes count as well
    const tight = [slot('s9-m3', 'm3', { partitions: [part('data', '/srv/m3/s9/data', { freeInodes: 210_000 })] })];
    expect(roomProblems(input({ slotsThere: tight }))[0]).toMatch(/would be 81% full with the store's copy \(inodes: 790000 used of 1000000, the store's copy 15600/);
  });

  it('counts the copies other moves are bringing to the same disk: each fits alone, not both', () => {
    const other = { storeSlots: input().storeSlots, growthBytes: 0, dataPath: '/srv/m3/s2/data', metaPath: '/srv/m3/s2/meta' };
    expect(roomProblems(input({ alsoComing: [other] }))[0]).toMatch(/^disk d0 on m3 would be 93% full with the store's copy \(bytes: 40\.0 GB used of 100\.0 GB, the store's copy and 1 other\(s\) headed there 52\.8 GB/);
    // a copy headed for another disk of the machine does not count on this one
    expect(roomProblems(input({ alsoComing: [{ ...other, dataPath: '/srv/other/s2/data', metaPath: '/srv/other/s2/meta' }] }))).toEqual([]);
  });

  it('says a disk is over the threshold already; a disk without a measurement is left to the declared sizes', () => {
    const full = [slot('s9-m3', 'm3', { partitions: [part('data', '/srv/m3/s9/data', { freeBytes: 15 * GB })] })];
    expect(roomProblems(input({ slotsThere: full }))).toEqual(['disk d0 on m3 is 85% full (bytes; the warning threshold is 80%): free space there or choose another machine']);
    expect(roomProblems(input({ slotsThere: [] }))).toEqual([]);
  });
});
