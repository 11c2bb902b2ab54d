// Which rows of the leader's in-memory database changed, as etcd puts and deletes. Triggers on every state table
// call back into JS with the key of each row inserted, updated or deleted (not for an update of `coarse` columns
// alone: a heartbeat writes nothing); `collect` reads those rows as they are now and returns what differs from what
// etcd holds (measurements aside: tables.ts). A row changed and changed back, or changed inside a savepoint that was rolled back, writes nothing.
import type Database from 'better-sqlite3';
import { columnsOf, eventsSeqOf } from '../dump.js';
import { STATE_TABLES, type Row, type TableSpec } from '../tables.js';
import type { EtcdKeys } from './keys.js';

/** A put (value) or a delete (no value) of one key; `prefix`: of every key starting with it. */
export interface Op {
  key: string;
  value?: string | Buffer;
  prefix?: boolean;
}

interface Tracked {
  spec: TableSpec;
  columns: string[];
  select: Database.Statement;
}

const FN = 'slotctl_row_changed';

export class RowMirror {
  private readonly tables = new Map<string, Tracked>();
  private readonly dirty = new Map<string, { table: string; key: unknown[] }>();
  /** etcd key → the row as etcd holds it, without its coarse columns (what a change is compared with). */
  private readonly held = new Map<string, string>();
  private eventsDeleted = false;

  /** `onChange` runs at the first change after a collect (the backend schedules its flush). */
  constructor(private readonly db: Database.Database, private readonly keys: EtcdKeys, private readonly onChange: () => void) {
    db.function(FN, { varargs: true, deterministic: false }, (table: unknown, ...key: unknown[]) => {
      const name = String(table);
      const k = this.keys.row(this.tables.get(name)!.spec, key);
      if (this.dirty.size === 0) this.onChange();
      this.dirty.set(k, { table: name, key });
      return null;
    });
    for (const spec of STATE_TABLES) {
      const columns = columnsOf(db, spec.name);
      const where = spec.key.map((c) => `${c} = ?`).join(' AND ');
      this.tables.set(spec.name, { spec, columns, select: db.prepare(`SELECT * FROM ${spec.name} WHERE ${where}`) });
      const args = (row: 'NEW' | 'OLD') => [`'${spec.name}'`, ...spec.key.map((c) => `${row}.${c}`)].join(', ');
      const watched = columns.filter((c) => !spec.coarse?.includes(c));
      db.exec(`
        CREATE TEMP TRIGGER mirror_${spec.name}_insert AFTER INSERT ON main.${spec.name} BEGIN SELECT ${FN}(${args('NEW')}); END;
        CREATE TEMP TRIGGER mirror_${spec.name}_delete AFTER DELETE ON main.${spec.name} BEGIN SELECT ${FN}(${args('OLD')}); END;
        CREATE TEMP TRIGGER mirror_${spec.name}_update AFTER UPDATE OF ${watched.join(', ')} ON main.${spec.name} BEGIN SELECT ${FN}(${args('OLD')}); SELECT ${FN}(${args('NEW')}); END;
      `);
    }
  }

  /** What etcd holds (after a load): changes are compared with it. */
  hold(table: string, row: Row): void {
    const t = this.tables.get(table)!;
    this.held.set(this.keys.row(t.spec, t.spec.key.map((c) => row[c])), this.comparable(t.spec, row));
  }

  /** Forgets the changes seen so far (the rows a load inserted: etcd holds them). */
  forget(): void {
    this.dirty.clear();
  }

  get pending(): number {
    return this.dirty.size;
  }

  /** Every row changed since the last collect, as it is now; must not run inside a transaction (it would read uncommitted rows). */
  collect(): Op[] {
    if (this.db.inTransaction) throw new Error('RowMirror.collect inside a transaction');
    const ops: Op[] = [];
    for (const [key, d] of this.dirty) {
      const t = this.tables.get(d.table)!;
      const row = t.select.get(...d.key) as Row | undefined;
      if (!row) {
        if (this.held.delete(key)) {
          ops.push({ key });
          if (d.table === 'events') this.eventsDeleted = true;
        }
        continue;
      }
      const comparable = this.comparable(t.spec, row);
      if (this.held.get(key) === comparable) continue;
      this.held.set(key, comparable);
      ops.push({ key, value: JSON.stringify(row) });
    }
    this.dirty.clear();
    // deleted events must not give their ids again after a reload
    if (this.eventsDeleted && ops.length) {
      ops.push({ key: this.keys.eventsSeq, value: String(eventsSeqOf(this.db)) });
      this.eventsDeleted = false;
    }
    return ops;
  }

  /** Every row of the database as a put (a schema migrated on load is written back whole). */
  everything(): Op[] {
    for (const t of this.tables.values()) {
      for (const row of this.db.prepare(`SELECT ${t.spec.key.join(', ')} FROM ${t.spec.name}`).raw().all() as unknown[][]) {
        this.dirty.set(this.keys.row(t.spec, row), { table: t.spec.name, key: row });
      }
    }
    this.held.clear();
    return this.collect();
  }

  private comparable(spec: TableSpec, row: Row): string {
    if (!spec.coarse && !spec.measured) return JSON.stringify(row);
    const copy = spec.measured ? spec.measured(row) : { ...row };
    for (const c of spec.coarse ?? []) delete copy[c];
    return JSON.stringify(copy);
  }
}
