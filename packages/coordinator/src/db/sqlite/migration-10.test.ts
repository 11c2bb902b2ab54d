// Schema 10 moves slot requests and their results out of the columns of `slots` into slot_requests. The fixture is a
// database made by the storage API of schema 9 (commit d528316: a three-machine cluster applied, every kind of request
// put, and results reported, some of them for requests already withdrawn); schema-9.desired.json is the desired state
// that code built from it. Opening the file migrates it: nothing may be lost, and every agent must be sent the same.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { desiredStateFor } from '../../desired/desired-state.js';
import { openDatabase } from '../open.js';
import { EMPTY_BACKLOG } from '../rows.js';
import type { Storage } from '../storage.js';
import { sqliteStorage } from './index.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

/** A DesiredSlot of schema 9, its request fields (replay_op … cleanup_timeout_s) as the list that replaced them. */
function asRequestList(flat: Record<string, unknown>): Record<string, unknown> {
  const f = flat as Record<string, string & string[] & number>;
  const requests: Record<string, unknown>[] = [];
  if (f.replayOp) requests.push({ id: f.replayOp, replay: {} });
  if (f.checkOp) requests.push({ id: f.checkOp, check: { mailboxes: f.checkMailboxes } });
  if (f.recoverListen) requests.push({ id: f.recoverListen, recoverListen: {} });
  if (f.recoverOp) requests.push({ id: f.recoverOp, recoverPush: { target: f.recoverTarget, targetSlot: f.recoverTargetSlot, targetMachine: f.recoverTargetMachine, mailboxes: f.recoverMailboxes } });
  if (f.seedOp) requests.push({ id: f.seedOp, seed: {} });
  if (f.cleanupOp) requests.push({ id: f.cleanupOp, cleanup: { expunged: f.cleanupExpunged, deleted: f.cleanupDeleted, duplicates: f.cleanupDuplicates, timeoutS: f.cleanupTimeoutS } });
  const fields = ['replayOp', 'checkOp', 'checkMailboxes', 'recoverListen', 'recoverOp', 'recoverTarget', 'recoverTargetSlot', 'recoverTargetMachine', 'recoverMailboxes', 'seedOp', 'cleanupOp', 'cleanupExpunged', 'cleanupDeleted', 'cleanupDuplicates', 'cleanupTimeoutS'];
  return { ...Object.fromEntries(Object.entries(flat).filter(([k]) => !fields.includes(k))), requests };
}

describe('schema 10: slot requests in a table of their own', () => {
  let dir: string;
  let db: Database.Database;
  let storage: Storage;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-migration-'));
    copyFileSync(join(FIXTURES, 'schema-9.db'), join(dir, 'c.db'));
    db = openDatabase(join(dir, 'c.db'));
    storage = sqliteStorage(db);
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves every open request and every stored result, and drops the columns', () => {
    expect(db.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(10);
    const columns = (db.prepare('SELECT name FROM pragma_table_info(?)').all('slots') as { name: string }[]).map((c) => c.name);
    for (const gone of ['replay_op', 'replay_result', 'check_op', 'check_mailboxes', 'check_result', 'recover_listen', 'recover_op', 'recover_target_slot', 'recover_mailboxes', 'recover_result', 'seed_op', 'seed_result', 'cleanup_op', 'cleanup_result']) {
      expect(columns).not.toContain(gone);
    }
    const s1m1 = storage.slots.get('s1-m1')!;
    expect(s1m1.requests).toEqual({ check: { kind: 'check', id: 'op-check-open', mailboxes: ['user.alice', 'user.bob'] }, seed: { kind: 'seed', id: 'op-seed' } });
    expect(s1m1.results.check).toMatchObject({ op: 'op-check-old', mailboxes: [{ name: 'user.alice', messages: 3 }] });
    expect(s1m1.results.seed).toMatchObject({ op: 'op-seed-old', ok: true, users: 2, messages: 40 });
    const s1m2 = storage.slots.get('s1-m2')!;
    expect(s1m2.requests).toEqual({ replay: { kind: 'replay', id: 'op-replay-open' } });
    expect(s1m2.results).toEqual({ replay: expect.objectContaining({ op: 'op-replay-old', ok: true, replayed: ['log-1'] }) });
    const s2m2 = storage.slots.get('s2-m2')!;
    expect(s2m2.requests).toEqual({ 'recover-listen': { kind: 'recover-listen', id: 'op-recover' }, cleanup: { kind: 'cleanup', id: 'op-cleanup-open' } });
    expect(s2m2.recoverListening).toBe('op-recover');
    expect(s2m2.results.cleanup).toMatchObject({ op: 'op-cleanup-old', freedBytes: 1024, tail: ['done'] });
    expect(s2m2.cleanupRequested).toBe('alice (operator)');
    const s2m3 = storage.slots.get('s2-m3')!;
    expect(s2m3.requests).toEqual({ 'recover-push': { kind: 'recover-push', id: 'op-recover', targetSlot: 's2-m2', mailboxes: ['user.carol'] } });
    expect(s2m3.results['recover-push']).toMatchObject({ op: 'op-recover-old', done: true, mailboxes: [{ name: 'user.dave', result: 'pushed' }] });
    // the cleanup scheduler still finds the running cleanup and its last result
    expect(storage.cleanup.candidates({ now: '2000-01-01T00:00:00.000Z', names: [] }).map((s) => [s.name, s.cleanupOp])).toEqual([['s2-m2', 'op-cleanup-open']]);
    expect(storage.cleanup.lastResult('s2-m2')?.op).toBe('op-cleanup-old');
  });

  it('builds the same desired state for every machine as schema 9 did (its request fields now a list)', () => {
    const before = JSON.parse(readFileSync(join(FIXTURES, 'schema-9.desired.json'), 'utf8')) as Record<string, { slots: Record<string, unknown>[] }>;
    for (const state of Object.values(before)) state.slots = state.slots.map(asRequestList);
    const cleanup = { expunged: '7d', deleted: '14d', duplicates: '3d', timeoutMs: 3_600_000 };
    for (const m of storage.machines.list()) {
      const { version: _version, ...state } = desiredStateFor(m.name, m.address, storage.slots.placedOfMachine(m.name), cleanup);
      expect(state, m.name).toEqual(before[m.name]);
    }
  });

  it('puts, replaces and withdraws requests; a withdrawn request keeps its result; reports write results by kind', () => {
    storage.requests.put('s1-m2', { kind: 'check', id: 'op-2', mailboxes: ['*'] });
    storage.requests.put('s1-m2', { kind: 'replay', id: 'op-3' }, 'test: replay again');
    expect(storage.slots.get('s1-m2')!.requests).toEqual({ replay: { kind: 'replay', id: 'op-3' }, check: { kind: 'check', id: 'op-2', mailboxes: ['*'] } });
    expect(storage.events.list({ store: 's1', limit: 100 }).map((e) => [e.kind, e.slot, e.op])).toContainEqual(['slot.replay-requested', 's1-m2', 'op-3']);
    storage.requests.withdraw('s1-m2', 'replay');
    expect(storage.slots.get('s1-m2')!.requests.replay).toBeUndefined();
    expect(storage.slots.get('s1-m2')!.results.replay?.op).toBe('op-replay-old');
    // a slot that does not exist: nothing, no event
    storage.requests.put('nope', { kind: 'replay', id: 'op-4' }, 'test');
    expect(storage.events.list({ limit: 1000 }).filter((e) => e.op === 'op-4')).toEqual([]);
    const report = { slot: 's1-m2', state: 'STOPPED', role: 'REPLICA', epochApplied: 1, backlog: EMPTY_BACKLOG, lastError: '', pid: 0, stateReason: '', crashes: 0, recentLog: [], syncConfirmedEpoch: 0, quarantine: undefined, recoverListening: '', partitions: undefined };
    storage.slots.saveReports('m2', [{ ...report, results: { check: { op: 'op-2', mailboxes: [], error: '' } } }]);
    expect(storage.slots.get('s1-m2')!.results).toEqual({ replay: expect.objectContaining({ op: 'op-replay-old' }), check: { op: 'op-2', mailboxes: [], error: '' } });
    // a report without results keeps the stored ones
    storage.slots.saveReports('m2', [{ ...report, state: 'SERVING', results: {} }]);
    expect(storage.slots.get('s1-m2')!.results.check?.op).toBe('op-2');
  });
});
