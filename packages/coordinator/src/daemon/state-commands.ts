// slot-coordinator export | import | backup: a cluster's whole state out of one backend and into another (SQLite ⇄
// etcd), and an online copy of the SQLite file. An export is JSON: every row of every state table, the schema they
// are in and the events' id sequence — `import` rebuilds the same cluster (same epochs, same operations, same event
// ids). Nothing is ever overwritten: an import needs an empty target.
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { Etcd3 } from 'etcd3';
import { ConfigError, ConflictError, NewerSchemaError, writeFileAtomic, type Logger } from '@slotctl/shared';
import { APPLICATION_ID, migrate, openDatabase, openMemoryDatabase } from '../db/open.js';
import { dumpRows, eventsSeqOf, loadRows } from '../db/dump.js';
import { etcdBackend } from '../db/etcd/index.js';
import { EtcdKeys, prefixEnd } from '../db/etcd/keys.js';
import { readState } from '../db/etcd/load.js';
import { LATEST_SCHEMA_VERSION } from '../db/migrations.js';
import { STATE_TABLES, type TableRows } from '../db/tables.js';
import { Leadership } from '../ha/leadership.js';

export const EXPORT_FORMAT = 'slotctl-state';

export interface StateExport {
  format: typeof EXPORT_FORMAT;
  formatVersion: 1;
  schema: number;
  exportedAt: string;
  from: string;
  eventsSeq: number;
  tables: TableRows;
}

const counts = (tables: TableRows) => Object.fromEntries(STATE_TABLES.map((t) => [t.name, tables[t.name]?.length ?? 0]));

/** A live SQLite database, read in one read transaction (WAL: the coordinator goes on writing meanwhile). */
export function exportSqlite(path: string): StateExport {
  if (!existsSync(path)) throw new ConfigError(`no database at ${path}`, { hint: 'name it with --db (or --data-dir)' });
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    if (db.pragma('application_id', { simple: true }) !== APPLICATION_ID) throw new ConfigError(`${path} is not a slotctl database`, { hint: 'name the coordinator database with --db' });
    const schema = db.pragma('user_version', { simple: true }) as number;
    if (schema > LATEST_SCHEMA_VERSION) throw new NewerSchemaError(`${path} has schema ${schema}, newer than this slot-coordinator (${LATEST_SCHEMA_VERSION})`, { hint: 'export with the release that wrote it' });
    const { tables, eventsSeq } = db.transaction(() => ({ tables: dumpRows(db), eventsSeq: eventsSeqOf(db) }))();
    return { format: EXPORT_FORMAT, formatVersion: 1, schema, exportedAt: new Date().toISOString(), from: `sqlite ${path}`, eventsSeq, tables };
  } finally {
    db.close();
  }
}

/** The cluster in etcd, read at one revision (coordinators may run meanwhile). */
export async function exportEtcd(client: Etcd3, prefix: string): Promise<StateExport> {
  const keys = new EtcdKeys(prefix);
  const pending = await client.kv.range({ key: Buffer.from(keys.journalReady) });
  if (pending.kvs.length) throw new ConflictError('the leader is writing a large change to etcd right now', { hint: 'export again in a moment' });
  const loaded = await readState(client.kv, keys);
  if (loaded.schema === 0) throw new ConfigError(`no cluster in etcd under ${prefix}`, { hint: 'check --etcd-prefix and --etcd-endpoints' });
  return { format: EXPORT_FORMAT, formatVersion: 1, schema: loaded.schema, exportedAt: new Date().toISOString(), from: `etcd ${prefix} at revision ${loaded.revision}`, eventsSeq: loaded.eventsSeq, tables: loaded.rows };
}

export function parseExport(text: string, file: string): StateExport {
  let data: StateExport;
  try {
    data = JSON.parse(text) as StateExport;
  } catch (err) {
    throw new ConfigError(`${file} is not JSON (${(err as Error).message})`, { hint: 'give a file written by slot-coordinator export' });
  }
  if (data?.format !== EXPORT_FORMAT || data.formatVersion !== 1 || typeof data.tables !== 'object') throw new ConfigError(`${file} is not a slot-coordinator export`, { hint: 'give a file written by slot-coordinator export' });
  if (data.schema > LATEST_SCHEMA_VERSION) throw new NewerSchemaError(`${file} holds schema ${data.schema}, newer than this slot-coordinator (${LATEST_SCHEMA_VERSION})`, { hint: 'import with the release that exported it' });
  return data;
}

/** The export's rows in an in-memory database brought to this release's schema (every row checked by SQLite). */
function rebuild(data: StateExport): Database.Database {
  const db = openMemoryDatabase(data.schema);
  try {
    loadRows(db, data.tables, data.eventsSeq);
    migrate(db, data.schema, LATEST_SCHEMA_VERSION);
    const bad = db.pragma('foreign_key_check') as unknown[];
    if (bad.length) throw new ConfigError(`the export's rows do not hold together (${bad.length} broken reference(s))`, { hint: 'export again from the source' });
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Into a new SQLite file (refused if one is there): written beside it, checked, then renamed into place. */
export async function importSqlite(data: StateExport, path: string): Promise<Record<string, number>> {
  if (existsSync(path) && statSync(path).size > 0) throw new ConflictError(`${path} exists`, { hint: 'import into a new file (move the old one aside first: nothing is overwritten)' });
  const db = rebuild(data);
  const temp = `${path}.import-${randomUUID().slice(0, 8)}`;
  try {
    await db.backup(temp);
  } finally {
    db.close();
  }
  try {
    openDatabase(temp).close(); // the checks a coordinator makes at start, and WAL mode
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  for (const suffix of ['-wal', '-shm']) if (existsSync(temp + suffix)) renameSync(temp + suffix, path + suffix);
  return counts(data.tables);
}

/**
 * Into etcd, under a prefix that holds nothing (no coordinator may run there): as a leader of its own for the
 * time of the import, so that a coordinator started meanwhile cannot interleave, and in one committed change.
 */
export async function importEtcd(data: StateExport, client: Etcd3, prefix: string, log: Logger): Promise<Record<string, number>> {
  const keys = new EtcdKeys(prefix);
  const root = prefix.replace(/\/+$/, '') + '/';
  const existing = await client.kv.range({ key: Buffer.from(root), range_end: prefixEnd(root), count_only: true });
  if (Number(existing.count) > 0) throw new ConflictError(`etcd already holds ${existing.count} key(s) under ${prefix}`, { hint: 'import under an empty --etcd-prefix, with no coordinator running there (etcdctl del --prefix removes a cluster for good)' });
  const db = rebuild(data);
  const rows = dumpRows(db);
  const eventsSeq = eventsSeqOf(db);
  db.close();
  const leadership = new Leadership({ client, keys, me: { id: `import-${randomUUID()}`, address: '(slot-coordinator import)', since: '' }, ttlSeconds: 10, log });
  const term = await leadership.campaign();
  try {
    const backend = await etcdBackend({ kv: client.kv, prefix, term, leaderUntil: () => leadership.until(), log, seed: { rows, eventsSeq } });
    backend.close();
  } finally {
    await leadership.resign();
  }
  return counts(rows);
}

/** An online copy of the live SQLite database (SQLite's backup API: consistent while the coordinator writes). */
export async function backupSqlite(path: string, to: string): Promise<Record<string, number>> {
  if (existsSync(to)) throw new ConflictError(`${to} exists`, { hint: 'name a new file: a backup never overwrites' });
  if (!existsSync(path)) throw new ConfigError(`no database at ${path}`, { hint: 'name it with --db (or --data-dir)' });
  const db = new Database(path, { readonly: true, fileMustExist: true });
  const temp = `${to}.partial-${randomUUID().slice(0, 8)}`;
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(temp);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  } finally {
    db.close();
  }
  let tables: TableRows;
  try {
    const copy = openDatabase(temp); // the same checks (integrity, schema) a coordinator makes at start
    tables = dumpRows(copy);
    copy.close();
    renameSync(temp, to);
    for (const suffix of ['-wal', '-shm']) if (existsSync(temp + suffix)) renameSync(temp + suffix, to + suffix);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  return counts(tables);
}

export async function writeExport(data: StateExport, out: string | undefined): Promise<void> {
  const text = `${JSON.stringify(data)}\n`;
  if (out) await writeFileAtomic(out, text, 0o600);
  else process.stdout.write(text);
}

export function readExport(file: string): StateExport {
  return parseExport(file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8'), file);
}
