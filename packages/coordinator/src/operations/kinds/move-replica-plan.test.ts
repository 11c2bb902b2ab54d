// What `slotctl store move-replica` checks before it starts, on a real database: the new slot's address (given, or
// the first free one of the target's slot_ips, not one another move asked for), and the refusals.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCluster } from '../../cluster/apply.js';
import { openDatabase } from '../../db/open.js';
import { sqliteStorage } from '../../db/sqlite/index.js';
import type { Storage } from '../../db/storage.js';
import type { KindContext } from '../framework/kind.js';
import { previewMoveReplica, startMoveReplica } from './move-replica-plan.js';
import { kindContext } from '../rows.fixture.js';

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
  let dir: string;
  let db: Database.Database;
  let storage: Storage;
  let ctx: KindContext;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-move-plan-'));
    db = openDatabase(join(dir, 'c.db'));
    storage = sqliteStorage(db);
    expect(applyCluster(storage, JSON.stringify(CLUSTER), { dryRun: false, prune: false, source: 'test' }).problems).toEqual([]);
    ctx = kindContext(storage, { connected: () => new Set(['m1', 'm2', 'm3', 'm4']) });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
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
