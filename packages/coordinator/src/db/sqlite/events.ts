// The event log in SQLite. Every other noun appends its events here, inside its own transaction.
import type Database from 'better-sqlite3';
import { nowIso, type EventFilter, type EventInput, type EventRow } from '../rows.js';
import type { EventStorage } from '../storage.js';
import { whereClause } from './where.js';

export class SqliteEvents implements EventStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO events (at, kind, machine, store, slot, epoch, op, reason, data)
         VALUES (@at, @kind, @machine, @store, @slot, @epoch, @op, @reason, @data)`,
      ),
      ofOperation: db.prepare("SELECT * FROM events WHERE op = ? AND kind LIKE 'operation.%' ORDER BY id"),
    };
  }

  append(event: EventInput, at = nowIso()): number {
    const result = this.stmt.insert.run({
      at,
      kind: event.kind,
      machine: event.machine ?? null,
      store: event.store ?? null,
      slot: event.slot ?? null,
      epoch: event.epoch ?? null,
      op: event.op ?? null,
      reason: event.reason,
      data: event.data === undefined ? null : JSON.stringify(event.data),
    });
    return Number(result.lastInsertRowid);
  }

  list(filter: EventFilter): EventRow[] {
    const params = { limit: filter.limit, since: filter.since, afterId: filter.afterId, store: filter.store, machine: filter.machine };
    const clause = whereClause(params, { since: 'at >= @since', afterId: 'id > @afterId', store: 'store = @store', machine: 'machine = @machine' });
    // The newest `limit` events, returned oldest first.
    const sql = `SELECT * FROM (SELECT * FROM events ${clause} ORDER BY id DESC LIMIT @limit) ORDER BY id`;
    return this.db.prepare(sql).all(params) as EventRow[];
  }

  ofOperation(op: string): EventRow[] {
    return this.stmt.ofOperation.all(op) as EventRow[];
  }
}
