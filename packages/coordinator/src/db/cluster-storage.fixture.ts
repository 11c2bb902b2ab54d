// A real database holding a small cluster, made fresh for each test of the describe block that asks for it: the
// set-up of the action and storage tests that need real rows rather than hand-made ones.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, expect } from 'vitest';
import { applyCluster } from '../cluster/apply.js';
import { openDatabase } from './open.js';
import { sqliteStorage } from './sqlite/index.js';
import type { Storage } from './storage.js';

/** Two machines and one store s1, its master on m1 and its replica on m2. */
export const TWO_MACHINES = {
  machines: ['m1', 'm2'].map((name, i) => ({ name, address: `127.0.9.${i + 1}` })),
  stores: [{ name: 's1', service_ip: '127.0.8.1', master: 'm1', slots: [{ machine: 'm1', ip: '127.0.7.1', data_path: '/srv/s1/a/d', meta_path: '/srv/s1/a/m' }, { machine: 'm2', ip: '127.0.7.2', data_path: '/srv/s1/b/d', meta_path: '/srv/s1/b/m' }] }],
};

export interface ClusterStorage {
  /** The current test's storage and its database (set before each test, closed and removed after it). */
  readonly storage: Storage;
  readonly db: Database.Database;
}

/**
 * Call inside a describe block: before each of its tests, a database in a new temporary directory with `cluster`
 * applied (the test fails if the cluster file has problems); after it, closed and removed. Hooks the caller adds
 * later run after this one's, so they can read `storage`.
 */
export function clusterStorage(cluster: object = TWO_MACHINES): ClusterStorage {
  let dir = '';
  let current: { storage: Storage; db: Database.Database } | undefined;
  const get = () => {
    if (!current) throw new Error('clusterStorage: read inside a test (or a hook after it), not at collection time');
    return current;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-rows-'));
    const db = openDatabase(join(dir, 'c.db'));
    const storage = sqliteStorage(db);
    expect(applyCluster(storage, JSON.stringify(cluster), { dryRun: false, prune: false, source: 'test' }).problems).toEqual([]);
    current = { storage, db };
  });
  afterEach(() => {
    current?.db.close();
    current = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    get storage() {
      return get().storage;
    },
    get db() {
      return get().db;
    },
  };
}
