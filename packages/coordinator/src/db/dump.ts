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
  for (const name of Object.keys(rows)) {
    if (!STATE_TABLES.some((t) => t.name === name)) throw new DumpError(`unknown table "${name}"`);
  }
  db.transaction(() => {
    db.pragma('defer_foreign_keys = ON');
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
      }
    }
    if (eventsSeq > 0) {
      db.prepare(`UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'events'`).run(eventsSeq);
      db.prepare(`INSERT INTO sqlite_sequence (name, seq) SELECT 'events', ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'events')`).run(eventsSeq);
    }
  })();
}

/** The next event id's base: the highest id ever given (sqlite_sequence), 0 when none. */
export function eventsSeqOf(db: Database.Database): number {
  const row = db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'events'`).get() as { seq: number } | undefined;
  return row?.seq ?? 0;
}
