// Cleanups (cyr_expire) in SQLite: the request in a slot's desired state (slot_requests), its start and end, and the
// history of runs.
import type Database from 'better-sqlite3';
import { cleanupEndEvent } from '../change-events.js';
import { nowIso, type CleanupResultRow, type CleanupRunFilter, type CleanupRunRow, type CleanupSlotRow } from '../rows.js';
import type { CleanupStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { reported, toCleanupRun, toCleanupSlot, type RawCleanupRun, type RawCleanupSlot } from './raw.js';
import type { SqliteSlots } from './slots.js';

/** A slot's open cleanup request ('' none): one lookup on slot_requests' key. */
const CLEANUP_OP = "coalesce((SELECT q.id FROM slot_requests q WHERE q.slot = slots.name AND q.kind = 'cleanup'), '')";

export class SqliteCleanup implements CleanupStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly slots: SqliteSlots) {
    this.stmt = {
      // each branch on its own index (migration 7; UNION would merge-scan the whole table): running, requested, due
      // by `now`, and the slots named; a slot in two branches is dropped by candidates()
      candidates: db.prepare(
        [
          // running: the open cleanup requests (their partial index)
          `SELECT s.name, s.store, s.machine, s.data_path, s.meta_path, s.observed_state, q.id AS cleanup_op, s.cleanup_started_at, s.cleanup_requested, s.cleanup_next_at, s.partitions
             FROM slot_requests q JOIN slots s ON s.name = q.slot WHERE q.kind = 'cleanup' AND q.id <> ''`,
          ...["cleanup_requested <> ''", "cleanup_next_at <> '' AND cleanup_next_at <= @now", 'name IN (SELECT value FROM json_each(@names))'].map(
            (where) =>
              `SELECT name, store, machine, data_path, meta_path, observed_state, ${CLEANUP_OP} AS cleanup_op, cleanup_started_at, cleanup_requested, cleanup_next_at, partitions FROM slots WHERE ${where}`,
          ),
        ].join(' UNION ALL '),
      ),
      lastResult: db.prepare("SELECT result FROM slot_requests WHERE slot = ? AND kind = 'cleanup'"),
      start: db.prepare('UPDATE slots SET cleanup_started_at = ? WHERE name = ?'),
      startRequest: db.prepare(
        `INSERT INTO slot_requests (slot, kind, id) VALUES (?, 'cleanup', ?)
         ON CONFLICT(slot, kind) DO UPDATE SET id = excluded.id`,
      ),
      insertRun: db.prepare(
        `INSERT OR IGNORE INTO cleanup_runs (slot, store, machine, op, requested_by, started_at, finished_at, ok, exit_code, ms, freed_bytes, error, tail)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      finish: db.prepare("UPDATE slots SET cleanup_started_at = '', cleanup_requested = '', cleanup_next_at = ? WHERE name = ?"),
      finishRequest: db.prepare("UPDATE slot_requests SET id = '' WHERE slot = ? AND kind = 'cleanup'"),
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
    const raw = this.stmt.lastResult.get(slot) as { result: string } | undefined;
    return raw && reported<CleanupResultRow>(raw.result);
  }

  start(slot: string, op: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.slots.get(slot)!;
      const at = nowIso();
      this.stmt.start.run(at, slot);
      this.stmt.startRequest.run(slot, op);
      this.events.append({ kind: 'cleanup.started', machine: row.machine, store: row.store, slot, op, reason }, at);
    })();
  }

  finish(slot: string, result: CleanupResultRow, nextAt: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.slots.get(slot)!;
      const at = nowIso();
      this.stmt.insertRun.run(slot, row.store, row.machine, result.op, row.cleanupRequested || 'schedule', result.startedAt || row.cleanupStartedAt, result.finishedAt || at, result.ok ? 1 : 0, result.exitCode, result.ms, result.freedBytes, result.error, JSON.stringify(result.tail));
      this.stmt.finish.run(nextAt, slot);
      this.stmt.finishRequest.run(slot);
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
