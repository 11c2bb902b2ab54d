// Slot requests in SQLite: one row per slot and kind (slot_requests), the request's id and parameters beside the
// last result the agent reported of that kind. Withdrawing a request ('' id) keeps its result.
import type Database from 'better-sqlite3';
import type { SlotRequest, SlotRequestKind } from '../rows.js';
import type { SlotRequestStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import type { SqliteSlots } from './slots.js';
import type { SqliteStores } from './stores.js';

export class SqliteSlotRequests implements SlotRequestStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly slots: SqliteSlots, private readonly stores: SqliteStores) {
    this.stmt = {
      put: db.prepare(
        `INSERT INTO slot_requests (slot, kind, id, params) SELECT @slot, @kind, @id, @params WHERE EXISTS (SELECT 1 FROM slots WHERE name = @slot)
         ON CONFLICT(slot, kind) DO UPDATE SET id = excluded.id, params = excluded.params`,
      ),
      withdraw: db.prepare("UPDATE slot_requests SET id = '', params = '{}' WHERE slot = ? AND kind = ?"),
    };
  }

  put(slot: string, request: SlotRequest, reason?: string): void {
    const { kind, id, ...params } = request;
    this.db.transaction(() => {
      if (this.stmt.put.run({ slot, kind, id, params: JSON.stringify(params) }).changes === 0 || reason === undefined) return;
      const row = this.slots.get(slot)!;
      this.events.append({ kind: `slot.${kind}-requested`, machine: row.machine, store: row.store, slot, epoch: this.stores.get(row.store)?.epoch, op: id, reason });
    })();
  }

  withdraw(slot: string, kind: SlotRequestKind): void {
    this.stmt.withdraw.run(slot, kind);
  }
}
