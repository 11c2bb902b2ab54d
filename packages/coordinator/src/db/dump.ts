// A database's state as plain rows and back: what `slot-coordinator export`/`import` move between backends, and
// how the etcd backend fills the leader's in-memory database. Rows are copied column by column: a column this build
// does not know is refused rather than dropped.
import type Database from 'better-sqlite3';
import { STATE_TABLES, type Row, type TableRows } from './tables.js';

export function columnsOf(db: Database.Database, table: string): string[] {
  return (db.prepare(`SELECT name FROM pragma_table_info(?)`).all(table) as { name: string }[]).map((c) => c.name);
}

/** Every state table's rows, in key order. */
export function dumpRows(db: Database.Database): TableRows {
  const out: TableRows = {};
  for (const t of STATE_TABLES) out[t.name] = db.prepare(`SELECT * FROM ${t.name} ORDER BY ${t.key.join(', ')}`).all() as Row[];
  return out;
}

export class DumpError extends Error {}

/**
 * Inserts `rows` into an empty, migrated database in one transaction (parents first; foreign keys checked at the
 * commit). The events' id sequence continues from `eventsSeq` when it is beyond the last event kept.
 */
export function loadRows(db: Database.Database, rows: TableRows, eventsSeq = 0): void {
  db.transaction(() => {
    for (const _ of loadSteps(db, rows, eventsSeq, Number.POSITIVE_INFINITY));
  })();
}

/**
 * The same, giving the event loop a turn every `chunk` rows: a new leader loads tens of thousands of rows while its
 * leadership lease must be kept alive (a 2 s etcd lease does not survive a 0.6 s block and a storm of hellos).
 * The database is the caller's alone until this resolves.
 */
export async function loadRowsYielding(db: Database.Database, rows: TableRows, eventsSeq = 0, chunk = 2000): Promise<void> {
  db.exec('BEGIN');
  try {
    for (const _ of loadSteps(db, rows, eventsSeq, chunk)) await new Promise((resolve) => setImmediate(resolve));
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

/** The inserts, inside a transaction the caller holds; yields after every `chunk` rows. */
function* loadSteps(db: Database.Database, rows: TableRows, eventsSeq: number, chunk: number): Generator<void> {
  for (const name of Object.keys(rows)) {
    if (!STATE_TABLES.some((t) => t.name === name)) throw new DumpError(`unknown table "${name}"`);
  }
  db.pragma('defer_foreign_keys = ON');
  let n = 0;
  for (const t of STATE_TABLES) {
    const list = rows[t.name] ?? [];
    if (list.length === 0) continue;
    const known = new Set(columnsOf(db, t.name));
    const columns = Object.keys(list[0]!);
    const unknown = columns.filter((c) => !known.has(c));
    if (unknown.length) throw new DumpError(`table ${t.name} has column(s) ${unknown.join(', ')} that this build does not know`);
    const insert = db.prepare(`INSERT INTO ${t.name} (${columns.join(', ')}) VALUES (${columns.map((c) => `@${c}`).join(', ')})`);
    for (const row of list) {
      if (Object.keys(row).length !== columns.length) throw new DumpError(`table ${t.name}: rows with different columns`);
      insert.run(row);
      if (++n % chunk === 0) yield;
    }
  }
  if (eventsSeq > 0) {
    db.prepare(`UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'`).run(eventsSeq);
    db.prepare(`INSERT INTO sqlite_sequence (name, seq) SELECT 'events', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')`).run(eventsSeq);
  }
}

/** The next event id's base: the highest id ever given (sqlite_sequence), 0 when none. */
export function eventsSeqOf(db: Database.Database): number {
  const row = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).get() as { seq: number } | undefined;
  return row?.seq ?? 0;
}
