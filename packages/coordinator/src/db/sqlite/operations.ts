// Operations in SQLite: persisted step by step, each step a compare-and-set with its event, so that they resume
// after a coordinator restart exactly where they were.
import type Database from 'better-sqlite3';
import { operationStepKind } from '../change-events.js';
import { nowIso, OperationConflict, type NewOperation, type OperationFilter, type OperationRow, type OperationStep } from '../rows.js';
import type { OperationStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { toOperation, type RawOperation } from './raw.js';
import { whereClause } from './where.js';

export class SqliteOperations implements OperationStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents) {
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO operations (id, kind, store, machine, state, step, step_since, params, parent, created_at, updated_at)
         VALUES (@id, @kind, @store, @machine, 'running', @step, @at, @params, @parent, @at, @at)`,
      ),
      one: db.prepare('SELECT * FROM operations WHERE id = ?'),
      running: db.prepare("SELECT * FROM operations WHERE state IN ('pending', 'running') ORDER BY created_at, id"),
      runningOnStore: db.prepare("SELECT * FROM operations WHERE store = ? AND state IN ('pending', 'running')"),
      runningDrain: db.prepare("SELECT * FROM operations WHERE machine = ? AND kind = 'drain' AND state IN ('pending', 'running')"),
      children: db.prepare('SELECT * FROM operations WHERE parent = ? ORDER BY created_at, id'),
      advance: db.prepare(
        `UPDATE operations SET step = @to, state = @state, step_since = @at, updated_at = @at, error = @error,
           result = @result, waiting = '' WHERE id = @id AND step = @from AND state = 'running'`,
      ),
      // not updated_at: a wait is not a change of the operation
      setWaiting: db.prepare("UPDATE operations SET waiting = ? WHERE id = ? AND state = 'running'"),
      setResult: db.prepare('UPDATE operations SET result = ?, updated_at = ? WHERE id = ?'),
      requestCancel: db.prepare("UPDATE operations SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state = 'running'"),
      busyStores: db.prepare("SELECT DISTINCT store FROM operations WHERE store IS NOT NULL AND state IN ('pending', 'running')"),
    };
  }

  /** The database allows one running operation per store and one drain per machine: a second one is refused. */
  create(input: NewOperation): OperationRow {
    return this.db.transaction(() => {
      const busy = input.store ? (this.stmt.runningOnStore.get(input.store) as RawOperation | undefined) : input.kind === 'drain' ? (this.stmt.runningDrain.get(input.machine) as RawOperation | undefined) : undefined;
      if (busy) throw new OperationConflict(toOperation(busy));
      const at = nowIso();
      this.stmt.insert.run({ id: input.id, kind: input.kind, store: input.store ?? null, machine: input.machine ?? null, step: input.step, params: JSON.stringify(input.params), parent: input.parent ?? null, at });
      this.events.append({ kind: `operation.started`, store: input.store, machine: input.machine, epoch: input.epoch, op: input.id, reason: input.reason, data: { kind: input.kind, step: input.step, params: input.params } }, at);
      return this.get(input.id)!;
    })();
  }

  get(id: string): OperationRow | undefined {
    const raw = this.stmt.one.get(id) as RawOperation | undefined;
    return raw && toOperation(raw);
  }

  running(): OperationRow[] {
    return (this.stmt.running.all() as RawOperation[]).map(toOperation);
  }

  children(parent: string): OperationRow[] {
    return (this.stmt.children.all(parent) as RawOperation[]).map(toOperation);
  }

  list(filter: OperationFilter): OperationRow[] {
    const params = { limit: filter.limit, store: filter.store, machine: filter.machine };
    // without `all`: what runs, and the operations that no other started
    const clause = whereClause(params, { store: 'store = @store', machine: 'machine = @machine' }, filter.all ? [] : ["(state IN ('pending', 'running') OR parent IS NULL)"]);
    const sql = `SELECT * FROM (SELECT * FROM operations ${clause} ORDER BY created_at DESC, id DESC LIMIT @limit) ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(params) as RawOperation[]).map(toOperation);
  }

  /** Written before the step's side effect runs: a restart resumes at the step, never repeats the one before. */
  advance(op: OperationRow, change: OperationStep): boolean {
    return this.db.transaction(() => {
      const at = nowIso();
      const result = { ...op.result, ...(change.result ?? {}) };
      const changed = this.stmt.advance.run({ id: op.id, from: op.step, to: change.to, state: change.state, at, error: change.error ?? op.error, result: JSON.stringify(result) }).changes;
      if (changed !== 1) return false;
      this.events.append(
        { kind: operationStepKind(change.state), store: op.store ?? undefined, machine: op.machine ?? undefined, slot: change.slot, epoch: change.epoch, op: op.id, reason: change.reason, data: { rule: change.rule, from: op.step, to: change.to, ...(change.error ? { error: change.error } : {}) } },
        at,
      );
      return true;
    })();
  }

  setWaiting(id: string, waiting: string): void {
    this.stmt.setWaiting.run(waiting, id);
  }

  mergeResult(id: string, patch: Record<string, unknown>): void {
    this.db.transaction(() => {
      const op = this.get(id);
      if (op) this.stmt.setResult.run(JSON.stringify({ ...op.result, ...patch }), nowIso(), id);
    })();
  }

  requestCancel(id: string, reason: string): boolean {
    return this.db.transaction(() => {
      const op = this.get(id);
      if (!op || this.stmt.requestCancel.run(nowIso(), id).changes !== 1) return false;
      this.events.append({ kind: 'operation.cancel-requested', store: op.store ?? undefined, machine: op.machine ?? undefined, op: id, reason });
      return true;
    })();
  }

  busyStores(): Set<string> {
    return new Set((this.stmt.busyStores.all() as { store: string }[]).map((r) => r.store));
  }
}
