// Opening the coordinator database: refuse anything that is not a healthy slotctl database of a schema this build
// understands, then bring it up to date. A refusal names the file and what to do; nothing is written before the checks.
import { closeSync, existsSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { CorruptDatabaseError, NewerSchemaError, type Logger } from '@slotctl/shared';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from './migrations.js';

/** PRAGMA application_id of a slotctl database ("Slot"), so another program's SQLite file is not mistaken for one. */
export const APPLICATION_ID = 0x536c6f74;
const SQLITE_MAGIC = 'SQLite format 3\0';

function readHeader(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(16);
    const read = readSync(fd, buffer, 0, 16, 0);
    return buffer.subarray(0, read).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

function corrupt(path: string, why: string): CorruptDatabaseError {
  return new CorruptDatabaseError(`database ${path} cannot be used: ${why}`, {
    hint: 'restore it from a backup, or move it aside to start with an empty database (the cluster must then be applied again)',
  });
}

export function openDatabase(path: string, log?: Logger): Database.Database {
  const exists = existsSync(path) && statSync(path).size > 0;
  if (exists && readHeader(path) !== SQLITE_MAGIC) throw corrupt(path, 'it is not an SQLite database');
  if (!exists) mkdirSync(dirname(path), { recursive: true });

  let db: Database.Database;
  try {
    db = new Database(path);
  } catch (err) {
    throw corrupt(path, (err as Error).message);
  }
  try {
    db.pragma('busy_timeout = 5000');
    const check = db.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw corrupt(path, `integrity check failed: ${String(check)}`);
    const version = db.pragma('user_version', { simple: true }) as number;
    const appId = db.pragma('application_id', { simple: true }) as number;
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
    if (appId !== APPLICATION_ID && (version !== 0 || tables.n > 0)) {
      throw corrupt(path, 'it is an SQLite database of another program (wrong application_id)');
    }
    if (version > LATEST_SCHEMA_VERSION) {
      throw new NewerSchemaError(
        `database ${path} has schema version ${version}, newer than this slot-coordinator understands (${LATEST_SCHEMA_VERSION})`,
        { hint: 'run the slot-coordinator release that wrote it (or a newer one); this one will not touch the file' },
      );
    }
    db.pragma('journal_mode = WAL');
    // FULL: a commit (an epoch flip, a promotion) survives a power loss, not only a crash of the process (NORMAL in
    // WAL mode may lose the last transactions on power loss); its cost at 1,000 agents is in BENCHMARKS.md
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    migrate(db, version, LATEST_SCHEMA_VERSION, log);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof CorruptDatabaseError || err instanceof NewerSchemaError) throw err;
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') throw corrupt(path, (err as Error).message);
    throw err;
  }
}

/** Runs the migrations after `from` up to `upTo`, each in its own transaction. */
export function migrate(db: Database.Database, from: number, upTo: number, log?: Logger): void {
  for (const migration of MIGRATIONS) {
    if (migration.version <= from || migration.version > upTo) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`application_id = ${APPLICATION_ID}`);
      db.pragma(`user_version = ${migration.version}`);
    })();
    log?.info({ migration: migration.version, description: migration.description }, 'database migrated');
  }
}

/** An in-memory database at schema `upTo` (the etcd backend's leader holds the cluster in one). */
export function openMemoryDatabase(upTo = LATEST_SCHEMA_VERSION): Database.Database {
  const db = new Database(':memory:');
  db.pragma('foreign_keys = ON');
  migrate(db, 0, upTo);
  return db;
}
