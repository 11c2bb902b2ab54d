// The event log in SQLite. Every other noun appends its events here, inside its own transaction.
import type Database from 'better-sqlite3';
import { nowIso, type EventFilter, type EventInput, type EventRow } from '../rows.js';
import type { EventStorage } from '../storage.js';
import { whereClause } from './where.js';

export class SqliteEvents implements EventStorage {
  private readonly stmt;
  /** The caller of the Admin call being served (calls are served synchronously: no interleaving). */
  private actor: string | undefined;

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO events (at, kind, machine, store, slot, epoch, op, reason, data, actor)
         VALUES (@at, @kind, @machine, @store, @slot, @epoch, @op, @reason, @data, @actor)`,
      ),
      // a running operation keeps its steps whatever their age, and so do its children (a drain's switchovers):
      // `operations show` reads them
      prune: db.prepare(
        `DELETE FROM events WHERE id IN (
           SELECT id FROM events WHERE at < @before
             AND (op IS NULL OR op NOT IN (
               SELECT id FROM operations WHERE state IN ('running', 'pending')
                 OR parent IN (SELECT id FROM operations WHERE state IN ('running', 'pending'))))
           ORDER BY id LIMIT @limit)`,
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
      actor: event.actor ?? this.actor ?? null,
    });
    return Number(result.lastInsertRowid);
  }

  as<T>(actor: string | undefined, fn: () => T): T {
    const before = this.actor;
    this.actor = actor;
    try {
      return fn();
    } finally {
      this.actor = before;
    }
  }

  prune(before: string, limit: number): number {
    return this.stmt.prune.run({ before, limit }).changes;
  }

  list(filter: EventFilter): EventRow[] {
    const params = { limit: filter.limit, since: filter.since, afterId: filter.afterId, store: filter.store, machine: filter.machine, who: filter.who };
    const clause = whereClause(params, {
      since: 'at >= @since',
      afterId: 'id > @afterId',
      store: 'store = @store',
      machine: 'machine = @machine',
      who: '(actor = @who OR op IN (SELECT op FROM events WHERE actor = @who AND op IS NOT NULL))',
    });
    // The newest `limit` events, returned oldest first; or, `oldestFirst`, the oldest `limit` (a reader catching up)
    const sql = filter.oldestFirst ? `SELECT * FROM events ${clause} ORDER BY id LIMIT @limit` : `SELECT * FROM (SELECT * FROM events ${clause} ORDER BY id DESC LIMIT @limit) ORDER BY id`;
    return this.db.prepare(sql).all(params) as EventRow[];
  }

  ofOperation(op: string): EventRow[] {
    return this.stmt.ofOperation.all(op) as EventRow[];
  }
}
