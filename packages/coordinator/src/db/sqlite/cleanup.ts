// Cleanups (cyr_expire) in SQLite: the request in a slot's desired state, its start and end, and the history of runs.
import type Database from 'better-sqlite3';
import { cleanupEndEvent } from '../change-events.js';
import { nowIso, type CleanupResultRow, type CleanupRunFilter, type CleanupRunRow, type CleanupSlotRow } from '../rows.js';
import type { CleanupStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { reported, toCleanupRun, toCleanupSlot, type RawCleanupRun, type RawCleanupSlot } from './raw.js';
import type { SqliteSlots } from './slots.js';

export class SqliteCleanup implements CleanupStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly slots: SqliteSlots) {
    this.stmt = {
      // each branch on its own index (migration 7; UNION would merge-scan the whole table): running, requested, due
      // by `now`, and the slots named; a slot in two branches is dropped by candidates()
      candidates: db.prepare(
        ["cleanup_op <> ''", "cleanup_requested <> ''", "cleanup_next_at <> '' AND cleanup_next_at <= @now", 'name IN (SELECT value FROM json_each(@names))']
          .map((where) => `SELECT name, store, machine, data_path, meta_path, observed_state, cleanup_op, cleanup_started_at, cleanup_requested, cleanup_next_at, partitions FROM slots WHERE ${where}`)
          .join(' UNION ALL '),
      ),
      lastResult: db.prepare('SELECT cleanup_result FROM slots WHERE name = ?'),
      start: db.prepare('UPDATE slots SET cleanup_op = ?, cleanup_started_at = ? WHERE name = ?'),
      insertRun: db.prepare(
        `INSERT OR IGNORE INTO cleanup_runs (slot, store, machine, op, requested_by, started_at, finished_at, ok, exit_code, ms, freed_bytes, error, tail)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finish: db.prepare("UPDATE slots SET cleanup_op = '', cleanup_started_at = '', cleanup_requested = '', cleanup_next_at = ? WHERE name = ?"),
      request: db.prepare('UPDATE slots SET cleanup_requested = ? WHERE name = ?'),
    };
  }

  /**
   * A slot row carries its reports: reading all 18,000 of a large cluster twice a second cost more than everything
   * else together, so only the slots that may start or end a cleanup are read.
   */
  candidates(input: { now: string; names: readonly string[] }): CleanupSlotRow[] {
    const seen = new Set<string>();
    const rows = (this.stmt.candidates.all({ now: input.now, names: JSON.stringify(input.names) }) as RawCleanupSlot[]).filter((r) => !seen.has(r.name) && seen.add(r.name));
    return rows.map(toCleanupSlot);
  }

  /** A result row is written once, when recorded. */
  lastResult(slot: string): CleanupResultRow | undefined {
    const raw = this.stmt.lastResult.get(slot) as { cleanup_result: string } | undefined;
    return raw && reported<CleanupResultRow>(raw.cleanup_result);
  }

  start(slot: string, op: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.slots.get(slot)!;
      const at = nowIso();
      this.stmt.start.run(op, at, slot);
      this.events.append({ kind: 'cleanup.started', machine: row.machine, store: row.store, slot, op, reason }, at);
    })();
  }

  finish(slot: string, result: CleanupResultRow, nextAt: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.slots.get(slot)!;
      const at = nowIso();
      this.stmt.insertRun.run(slot, row.store, row.machine, result.op, row.cleanupRequested || 'schedule', result.startedAt || row.cleanupStartedAt, result.finishedAt || at, result.ok ? 1 : 0, result.exitCode, result.ms, result.freedBytes, result.error, JSON.stringify(result.tail));
      this.stmt.finish.run(nextAt, slot);
      this.events.append({ ...cleanupEndEvent(result, reason), machine: row.machine, store: row.store, slot, op: result.op }, at);
    })();
  }

  request(slot: string, by: string): void {
    this.stmt.request.run(by, slot);
  }

  runs(filter: CleanupRunFilter): CleanupRunRow[] {
    const where = filter.slot ? 'WHERE slot = @slot' : filter.machine ? 'WHERE machine = @machine' : '';
    const rows = this.db.prepare(`SELECT * FROM cleanup_runs ${where} ORDER BY id DESC LIMIT @limit`).all({ slot: filter.slot, machine: filter.machine, limit: filter.limit }) as RawCleanupRun[];
    return rows.map(toCleanupRun);
  }
}
