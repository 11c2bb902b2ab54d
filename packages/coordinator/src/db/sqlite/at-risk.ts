// At-risk records in SQLite: what a disaster failover may have left unreplicated on the old master, until it is
// recovered or found to hold nothing.
import type Database from 'better-sqlite3';
import { closesAtRisk } from '../change-events.js';
import { nowIso, type AtRiskChange, type AtRiskRow, type NewAtRisk } from '../rows.js';
import type { AtRiskStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { toAtRisk, type RawAtRisk } from './raw.js';

export class SqliteAtRisk implements AtRiskStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents) {
    this.stmt = {
      insert: db.prepare(
        `INSERT INTO at_risk (store, slot, machine, op, epoch, created_at, backlog, state, mailboxes)
         VALUES (@store, @slot, @machine, @op, @epoch, @at, @backlog, 'open', @mailboxes)`,
      ),
      all: db.prepare('SELECT * FROM at_risk ORDER BY id'),
      open: db.prepare('SELECT * FROM at_risk WHERE closed_at IS NULL ORDER BY id'),
      ofStore: db.prepare('SELECT * FROM at_risk WHERE store = ? ORDER BY id'),
      openOfSlot: db.prepare(`SELECT * FROM at_risk WHERE slot = ? AND state IN ('open', 'recovering')`),
      update: db.prepare('UPDATE at_risk SET state = @state, mailboxes = @mailboxes, result = @result, closed_at = @closedAt WHERE id = @id'),
    };
  }

  create(input: NewAtRisk): number {
    const result = this.stmt.insert.run({ ...input, backlog: JSON.stringify(input.backlog), mailboxes: JSON.stringify(input.backlog.mailboxNames ?? []), at: nowIso() });
    return Number(result.lastInsertRowid);
  }

  list(store?: string): AtRiskRow[] {
    const rows = (store ? this.stmt.ofStore.all(store) : this.stmt.all.all()) as RawAtRisk[];
    return rows.map(toAtRisk);
  }

  listOpen(): AtRiskRow[] {
    return (this.stmt.open.all() as RawAtRisk[]).map(toAtRisk);
  }

  openOfSlot(slot: string): AtRiskRow | undefined {
    const raw = this.stmt.openOfSlot.get(slot) as RawAtRisk | undefined;
    return raw && toAtRisk(raw);
  }

  update(row: AtRiskRow, change: AtRiskChange): void {
    const closed = closesAtRisk(change.state);
    this.db.transaction(() => {
      this.stmt.update.run({
        id: row.id,
        state: change.state,
        mailboxes: JSON.stringify(change.mailboxes ?? row.mailboxes),
        result: JSON.stringify(change.result ?? row.result),
        closedAt: closed ? nowIso() : null,
      });
      this.events.append({ kind: `at-risk.${change.state}`, store: row.store, slot: row.slot, machine: row.machine, op: change.op ?? row.op, reason: change.reason, data: { atRisk: row.id } });
    })();
  }
}
