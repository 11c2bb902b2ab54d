// The queries the coordinator runs many times a second, on a real database: what they return, and that a report
// identical to the stored one moves only its time.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCluster } from '../cluster/apply.js';
import { openDatabase } from './open.js';
import { EMPTY_BACKLOG, Repository, type SlotReportInput } from './repository.js';

const CLUSTER = JSON.stringify({
  machines: ['m1', 'm2', 'm3'].map((name, i) => ({ name, address: `127.0.9.${i + 1}` })),
  stores: [
    { name: 's1', service_ip: '127.0.8.1', master: 'm1', slots: [{ machine: 'm1', ip: '127.0.7.1', data_path: '/srv/s1/a/d', meta_path: '/srv/s1/a/m' }, { machine: 'm2', ip: '127.0.7.2', data_path: '/srv/s1/b/d', meta_path: '/srv/s1/b/m' }] },
    { name: 's2', service_ip: '127.0.8.2', master: 'm2', slots: [{ machine: 'm2', ip: '127.0.7.3', data_path: '/srv/s2/a/d', meta_path: '/srv/s2/a/m' }, { machine: 'm3', ip: '127.0.7.4', data_path: '/srv/s2/b/d', meta_path: '/srv/s2/b/m' }] },
  ],
});

function report(slot: string, state = 'SERVING', log = ['a line']): SlotReportInput {
  return { slot, state, role: 'MASTER', epochApplied: 1, backlog: EMPTY_BACKLOG, lastError: '', pid: 7, stateReason: '', crashes: 0, recentLog: log, syncConfirmedEpoch: 0, recoverListening: '', partitions: undefined } as SlotReportInput;
}

describe('repository: the hot paths', () => {
  let dir: string;
  let db: Database.Database;
  let repo: Repository;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-repo-'));
    db = openDatabase(join(dir, 'c.db'));
    repo = new Repository(db);
    const out = applyCluster(repo, CLUSTER, { dryRun: false, prune: false, source: 'test' });
    expect(out.problems).toEqual([]);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('an identical report moves only the report time; a different one rewrites the row', async () => {
    const slot = repo.slotsOfMachine('m1')[0]!;
    expect(slot.reportedAt).toBeNull();
    expect(repo.saveSlotReports('m1', [report(slot.name)])).toEqual([]);
    const first = repo.getSlot(slot.name)!;
    expect(first.observedState).toBe('SERVING');
    const rowTime = () => (db.prepare('SELECT reported_at FROM slots WHERE name = ?').get(slot.name) as { reported_at: string }).reported_at;
    const written = rowTime();
    await new Promise((r) => setTimeout(r, 5));
    repo.saveSlotReports('m1', [report(slot.name)]);
    const second = repo.getSlot(slot.name)!;
    expect(second.reportedAt! > first.reportedAt!).toBe(true); // the report counts as fresh (switchovers wait on it)
    expect(rowTime()).toBe(written); // the wide row was not rewritten
    repo.saveSlotReports('m1', [report(slot.name, 'STOPPED')]);
    expect(repo.getSlot(slot.name)!.observedState).toBe('STOPPED');
    expect(rowTime() > written).toBe(true);
  });

  it('ignores reports of slots that are not on the machine, identical or not', () => {
    const other = repo.slotsOfMachine('m3')[0]!;
    expect(repo.saveSlotReports('m1', [report(other.name)])).toEqual([other.name]);
    expect(repo.getSlot(other.name)!.reportedAt).toBeNull();
  });

  it('forgets the report time of a slot removed from the cluster', () => {
    const slot = repo.slotsOfMachine('m3')[0]!;
    repo.saveSlotReports('m3', [report(slot.name)]);
    const without = JSON.parse(CLUSTER) as { stores: unknown[] };
    without.stores = without.stores.slice(0, 1);
    expect(applyCluster(repo, JSON.stringify(without), { dryRun: false, prune: true, source: 'test' }).problems).toEqual([]);
    expect((db.prepare('SELECT count(*) AS n FROM slot_reports WHERE name = ?').get(slot.name) as { n: number }).n).toBe(0);
  });

  it('finds machines holding masters that are down or suspect, and their stores', () => {
    expect(repo.machinesWithMastersDownOrSuspect()).toEqual([]);
    repo.setMachineState('m3', 'down', 'test'); // holds only a replica
    expect(repo.machinesWithMastersDownOrSuspect()).toEqual([]);
    repo.setMachineState('m2', 'suspect', 'test');
    repo.setMachineState('m1', 'down', 'test');
    expect(repo.machinesWithMastersDownOrSuspect()).toEqual([{ machine: 'm1', state: 'down' }, { machine: 'm2', state: 'suspect' }]);
    expect(repo.storesMasteredOn('m2').map((s) => s.name)).toEqual(['s2']);
    expect(repo.storesMasteredOn('m3')).toEqual([]);
  });

  it('gives the cleanup scheduler running, requested, due and named slots, each once', () => {
    const [a, b, c] = repo.listSlots();
    const now = new Date().toISOString();
    expect(repo.cleanupCandidates({ now, names: [] })).toEqual([]);
    repo.startCleanup(a!.name, 'cl-1', 'test');
    repo.requestCleanup(b!.name, 'operator');
    db.prepare('UPDATE slots SET cleanup_next_at = ? WHERE name = ?').run('2000-01-01T00:00:00.000Z', c!.name);
    const names = repo.cleanupCandidates({ now, names: [a!.name] }).map((s) => s.name).sort();
    expect(names).toEqual([a!.name, b!.name, c!.name].sort());
    db.prepare('UPDATE slots SET cleanup_next_at = ? WHERE name = ?').run('2999-01-01T00:00:00.000Z', c!.name);
    expect(repo.cleanupCandidates({ now, names: [] }).map((s) => s.name).sort()).toEqual([a!.name, b!.name].sort());
  });
});
