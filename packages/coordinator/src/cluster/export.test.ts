import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseCluster } from '@slotctl/shared/cluster-spec';
import { openMemoryDatabase } from '../db/open.js';
import { sqliteStorage } from '../db/sqlite/index.js';
import { applyCluster } from './apply.js';
import { exportCluster } from './export.js';

const example = readFileSync(new URL('../../../../deploy/cluster.example.yaml', import.meta.url), 'utf8');

function applied() {
  const storage = sqliteStorage(openMemoryDatabase());
  expect(applyCluster(storage, example, { dryRun: false, prune: false, source: 'example' }).applied).toBe(true);
  return storage;
}

const effective = (storage: ReturnType<typeof applied>, text: string, prune = true) =>
  applyCluster(storage, text, { dryRun: true, prune, source: 'export' }).changes.filter((c) => c.action !== 'keep');

describe('cluster export', () => {
  it('prints a file that parses and that, applied (even with --prune), changes nothing', () => {
    const storage = applied();
    const text = exportCluster(storage, new Date('2026-12-04T00:00:00Z'));
    expect(text.startsWith('# The cluster as the coordinator')).toBe(true);
    expect(parseCluster(text).problems).toEqual([]);
    expect(effective(storage, text)).toEqual([]);
    // a store's expected growth goes in and out as bytes
    expect(storage.stores.get('s02')?.growthBytes).toBe(50e9);
    expect(parseCluster(text).spec!.stores.find((s) => s.name === 's02')?.expected_growth).toBe(50e9);
    expect(effective(storage, text.replace('expected_growth: 50000000000', 'expected_growth: 60GB'))).toEqual([expect.objectContaining({ action: 'update', kind: 'store', name: 's02', detail: 'expected_growth 50000000000 -> 60000000000 bytes' })]);
  });

  it('names the current master after a change of master, and the file on disk would not', () => {
    const storage = applied();
    storage.stores.setMaster('s01', 's01-m2', 1, 'test');
    const text = exportCluster(storage);
    expect(parseCluster(text).spec!.stores.find((s) => s.name === 's01')!.master).toBe('m2');
    expect(effective(storage, text)).toEqual([]);
    expect(effective(storage, example).map((c) => c.name)).toContain('s01');
  });

  it('leaves a retired machine out once no store has a slot there, and says so; a slot made by re-replication keeps its name', () => {
    const storage = applied();
    storage.stores.setMaster('s02', 's02-m1', 1, 'test');
    storage.machines.setDrained('m2', true, 'test');
    storage.machines.retire('m2', 'test');
    // still holding replicas: kept, so the file stays whole
    expect(parseCluster(exportCluster(storage)).spec!.machines.map((m) => m.name)).toContain('m2');
    storage.machines.add({ name: 'm3', address: '127.0.10.3', disks: [], slotCapacity: 18, rack: 'r3' }, new Date().toISOString());
    for (const store of ['s01', 's02']) {
      const row = storage.stores.get(store)!;
      storage.stores.replaceReplica({ store, expectEpoch: row.epoch, slot: `${store}-m3-r1`, machine: 'm3', dataPath: `/srv/${store}/data`, metaPath: `/srv/${store}/meta`, op: 'op-1', reason: 'test' });
    }
    const text = exportCluster(storage);
    expect(text).toMatch(/# Retired machines .*: m2\./);
    const spec = parseCluster(text).spec!;
    expect(spec.machines.map((m) => m.name)).not.toContain('m2');
    expect(spec.stores.find((s) => s.name === 's01')!.slots.map((s) => s.name)).toContain('s01-m3-r1');
    expect(effective(storage, text, false)).toEqual([]);
    // --prune would remove the retired machine's rows, which is all that is left of it
    expect(effective(storage, text, true).map((c) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['remove machine m2']);
  });
});
