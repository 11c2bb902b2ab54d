// The requests a slot's desired state carries (columns of its row), each carried out once by its agent under an
// operation id; '' clears one.
import type Database from 'better-sqlite3';
import type { SlotRequestStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import type { SqliteSlots } from './slots.js';
import type { SqliteStores } from './stores.js';

export class SqliteSlotRequests implements SlotRequestStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly slots: SqliteSlots, private readonly stores: SqliteStores) {
    this.stmt = {
      replay: db.prepare('UPDATE slots SET replay_op = ? WHERE name = ?'),
      check: db.prepare('UPDATE slots SET check_op = ?, check_mailboxes = ? WHERE name = ?'),
      recoverListen: db.prepare('UPDATE slots SET recover_listen = ? WHERE name = ?'),
      recoverPush: db.prepare('UPDATE slots SET recover_op = ?, recover_target_slot = ?, recover_mailboxes = ? WHERE name = ?'),
      seed: db.prepare('UPDATE slots SET seed_op = ? WHERE name = ?'),
    };
  }

  replay(slot: string, op: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.slots.get(slot);
      if (!row) return;
      this.stmt.replay.run(op, slot);
      const store = this.stores.get(row.store);
      this.events.append({ kind: 'slot.replay-requested', machine: row.machine, store: row.store, slot, epoch: store?.epoch, op, reason });
    })();
  }

  check(slot: string, op: string, mailboxes: readonly string[]): void {
    this.stmt.check.run(op, JSON.stringify(mailboxes), slot);
  }

  recoverListen(slot: string, op: string): void {
    this.stmt.recoverListen.run(op, slot);
  }

  recoverPush(slot: string, op: string, target: string, mailboxes: readonly string[]): void {
    this.stmt.recoverPush.run(op, target, JSON.stringify(mailboxes), slot);
  }

  seed(slot: string, op: string): void {
    this.stmt.seed.run(op, slot);
  }
}
