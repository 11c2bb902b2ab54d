// The queries the coordinator runs many times a second, on a real database: what they return, that a report
// identical to the stored one moves only its time, and the events a report writes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCluster } from '../../cluster/apply.js';
import { openDatabase } from '../open.js';
import { EMPTY_BACKLOG, type SlotReportInput } from '../rows.js';
import type { Storage } from '../storage.js';
import { sqliteStorage } from './index.js';

const CLUSTER = JSON.stringify({
  machines: ['m1', 'm2', 'm3'].map((name, i) => ({ name, address: `127.0.9.${i + 1}` })),
  stores: [
    { name: 's1', service_ip: '127.0.8.1', master: 'm1', slots: [{ machine: 'm1', ip: '127.0.7.1', data_path: '/srv/s1/a/d', meta_path: '/srv/s1/a/m' }, { machine: 'm2', ip: '127.0.7.2', data_path: '/srv/s1/b/d', meta_path: '/srv/s1/b/m' }] },
    { name: 's2', service_ip: '127.0.8.2', master: 'm2', slots: [{ machine: 'm2', ip: '127.0.7.3', data_path: '/srv/s2/a/d', meta_path: '/srv/s2/a/m' }, { machine: 'm3', ip: '127.0.7.4', data_path: '/srv/s2/b/d', meta_path: '/srv/s2/b/m' }] },
  ],
});

function report(slot: string, state = 'SERVING', log = ['a line']): SlotReportInput {
  return { slot, state, role: 'MASTER', epochApplied: 1, backlog: EMPTY_BACKLOG, lastError: '', pid: 7, stateReason: '', crashes: 0, recentLog: log, syncConfirmedEpoch: 0, recoverListening: '', results: {}, partitions: undefined } as SlotReportInput;
}

describe('sqlite storage: the hot paths', () => {
  let dir: string;
  let db: Database.Database;
  let storage: Storage;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-storage-'));
    db = openDatabase(join(dir, 'c.db'));
    storage = sqliteStorage(db);
    const out = applyCluster(storage, CLUSTER, { dryRun: false, prune: false, source: 'test' });
    expect(out.problems).toEqual([]);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an identical report moves only the report time; a different one rewrites the row', async () => {
    const slot = storage.slots.ofMachine('m1')[0]!;
    expect(slot.reportedAt).toBeNull();
    expect(storage.slots.saveReports('m1', [report(slot.name)])).toEqual([]);
    const first = storage.slots.get(slot.name)!;
    expect(first.observedState).toBe('SERVING');
    const rowTime = () => (db.prepare('SELECT reported_at FROM slots WHERE name = ?').get(slot.name) as { reported_at: string }).reported_at;
    const written = rowTime();
    await new Promise((r) => setTimeout(r, 5));
    storage.slots.saveReports('m1', [report(slot.name)]);
    const second = storage.slots.get(slot.name)!;
    expect(second.reportedAt! > first.reportedAt!).toBe(true); // the report counts as fresh (switchovers wait on it)
    expect(rowTime()).toBe(written); // the wide row was not rewritten
    storage.slots.saveReports('m1', [report(slot.name, 'STOPPED')]);
    expect(storage.slots.get(slot.name)!.observedState).toBe('STOPPED');
    expect(rowTime() > written).toBe(true);
  });

  it('writes an event when a report stalls replication and when it moves again, with the store and its epoch', () => {
    const slot = storage.slots.ofMachine('m1')[0]!;
    const stuck = { ...EMPTY_BACKLOG, files: 2, mailboxes: 1, stalled: true, stallReason: 'no progress for 30 s although 127.0.7.2:2005 accepts connections (rolling sync_client stuck?)' };
    storage.slots.saveReports('m1', [report(slot.name)]);
    storage.slots.saveReports('m1', [{ ...report(slot.name), backlog: stuck }]);
    storage.slots.saveReports('m1', [{ ...report(slot.name), backlog: stuck, recentLog: ['another line'] }]); // still stalled: no event
    storage.slots.saveReports('m1', [report(slot.name)]);
    const events = storage.events.list({ limit: 100 }).filter((e) => e.kind.startsWith('slot.replication-'));
    expect(events.map((e) => [e.kind, e.store, e.slot, e.epoch])).toEqual([
      ['slot.replication-stuck', slot.store, slot.name, 1],
      ['slot.replication-resumed', slot.store, slot.name, 1],
    ]);
  });

  it('ignores reports of slots that are not on the machine, identical or not', () => {
    const other = storage.slots.ofMachine('m3')[0]!;
    expect(storage.slots.saveReports('m1', [report(other.name)])).toEqual([other.name]);
    expect(storage.slots.get(other.name)!.reportedAt).toBeNull();
  });

  it('forgets the report time of a slot removed from the cluster', () => {
    const slot = storage.slots.ofMachine('m3')[0]!;
    storage.slots.saveReports('m3', [report(slot.name)]);
    const without = JSON.parse(CLUSTER) as { stores: unknown[] };
    without.stores = without.stores.slice(0, 1);
    expect(applyCluster(storage, JSON.stringify(without), { dryRun: false, prune: true, source: 'test' }).problems).toEqual([]);
    expect((db.prepare('SELECT count(*) AS n FROM slot_reports WHERE name = ?').get(slot.name) as { n: number }).n).toBe(0);
  });

  it('finds machines holding masters that are down or suspect, and their stores', () => {
    expect(storage.machines.withMastersDownOrSuspect()).toEqual([]);
    storage.machines.setState('m3', 'down', 'test'); // holds only a replica
    expect(storage.machines.withMastersDownOrSuspect()).toEqual([]);
    storage.machines.setState('m2', 'suspect', 'test');
    storage.machines.setState('m1', 'down', 'test');
    expect(storage.machines.withMastersDownOrSuspect()).toEqual([{ machine: 'm1', state: 'down' }, { machine: 'm2', state: 'suspect' }]);
    expect(storage.stores.masteredOn('m2').map((s) => s.name)).toEqual(['s2']);
    expect(storage.stores.masteredOn('m3')).toEqual([]);
  });

  it('gives the cleanup scheduler running, requested, due and named slots, each once', () => {
    const [a, b, c] = storage.slots.list();
    const now = new Date().toISOString();
    expect(storage.cleanup.candidates({ now, names: [] })).toEqual([]);
    storage.cleanup.start(a!.name, 'cl-1', 'test');
    storage.cleanup.request(b!.name, 'operator');
    db.prepare('UPDATE slots SET cleanup_next_at = ? WHERE name = ?').run('2000-01-01T00:00:00.000Z', c!.name);
    const names = storage.cleanup.candidates({ now, names: [a!.name] }).map((s) => s.name).sort();
    expect(names).toEqual([a!.name, b!.name, c!.name].sort());
    db.prepare('UPDATE slots SET cleanup_next_at = ? WHERE name = ?').run('2999-01-01T00:00:00.000Z', c!.name);
    expect(storage.cleanup.candidates({ now, names: [] }).map((s) => s.name).sort()).toEqual([a!.name, b!.name].sort());
  });
});
