// The coordinator refuses a database it cannot trust, with a message that names the file and what to do, and
// leaves the file untouched.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, LocalCluster, freePort } from '../tools/local-cluster.js';
import { HARNESS_COORDINATOR, ensureCertificates, tlsArgs } from '../tools/test-pki.js';
import { TWO_MACHINES, dumpDatabase, removeDir, tempDir } from './support/fixtures.js';
import { LATEST_SCHEMA_VERSION } from '../packages/coordinator/src/db/migrations.js';

const root = tempDir('db');
afterAll(() => removeDir(root));

async function startOn(dbPath: string) {
  const port = await freePort();
  const pki = process.env.SLOTCTL_TEST_PKI_DIR ?? join(root, 'pki');
  ensureCertificates(pki, [HARNESS_COORDINATOR]);
  return execa('node', [BIN.coordinator, '--listen', `127.0.0.1:${port}`, '--http-listen', 'off', '--db', dbPath, ...tlsArgs(pki, HARNESS_COORDINATOR)], { reject: false, timeout: 15_000 });
}

describe('coordinator database', () => {
  it('keeps every row across a restart and applies migrations only once', async () => {
    const dir = join(root, 'restart');
    const cluster = new LocalCluster({ dir, lease: '120s' });
    try {
      await cluster.startCoordinator();
      expect((await cluster.slotctl(['cluster', 'apply', '-'], TWO_MACHINES)).exitCode).toBe(0);
      await cluster.coordinator!.stop();
      const before = dumpDatabase(cluster.databasePath);
      await cluster.startCoordinator();
      const after = dumpDatabase(cluster.databasePath);
      // the restart adds its own coordinator.started event; nothing else changes
      expect({ ...after, events: after.events!.slice(0, before.events!.length) }).toEqual(before);
      expect(after.events!.slice(before.events!.length)).toEqual([expect.objectContaining({ kind: 'coordinator.started' })]);
      const db = new Database(cluster.databasePath, { readonly: true });
      expect(db.pragma('user_version', { simple: true })).toBe(LATEST_SCHEMA_VERSION);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
    } finally {
      await cluster.stopAll();
    }
  });

  it('refuses a file that is not an SQLite database', async () => {
    const path = join(root, 'garbage.db');
    writeFileSync(path, 'this is not a database, it is a shopping list\n'.repeat(100));
    const bytes = readFileSync(path);
    const result = await startOn(path);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`database ${path} cannot be used: it is not an SQLite database`);
    expect(result.stderr).toMatch(/hint: restore it from a backup/);
    expect(readFileSync(path)).toEqual(bytes);
  });

  it('refuses a damaged slotctl database', async () => {
    const dir = join(root, 'damaged');
    mkdirSync(dir);
    const path = join(dir, 'coordinator.db');
    const db = new Database(path);
    db.pragma('application_id = 1399615348');
    db.exec('CREATE TABLE big (x TEXT); ');
    const insert = db.prepare('INSERT INTO big VALUES (?)');
    // One transaction, not 2000 autocommits: each of those syncs the file, 30-70 s together on a host whose disk
    // other tests keep busy (this test timed out at 60 s); the file written is the same.
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run(`row ${i} ${'x'.repeat(200)}`);
    })();
    db.close();
    // Overwrite the middle of the file (b-tree pages) while keeping the header intact.
    const bytes = readFileSync(path);
    bytes.fill(0xa5, 4096 * 3, 4096 * 20);
    writeFileSync(path, bytes);
    const result = await startOn(path);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`database ${path} cannot be used: .*(integrity|malformed|corrupt)`, 'i'));
    expect(readFileSync(path)).toEqual(bytes);
  });

  it('refuses a database written by a newer slotctl and does not touch it', async () => {
    const path = join(root, 'newer.db');
    const db = new Database(path);
    db.pragma('application_id = 1399615348');
    db.exec('CREATE TABLE machines (name TEXT)');
    db.pragma('user_version = 99');
    db.close();
    const bytes = readFileSync(path);
    const result = await startOn(path);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`database ${path} has schema version 99, newer than this slot-coordinator understands (${LATEST_SCHEMA_VERSION})`);
    expect(result.stderr).toMatch(/hint: run the slot-coordinator release that wrote it/);
    expect(readFileSync(path)).toEqual(bytes);
  });

  it('refuses an SQLite database of another program', async () => {
    const path = join(root, 'other.db');
    const db = new Database(path);
    db.exec('CREATE TABLE recipes (name TEXT)');
    db.close();
    const result = await startOn(path);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('it is an SQLite database of another program');
  });
});
