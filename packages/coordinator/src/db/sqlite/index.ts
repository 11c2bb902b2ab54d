// The coordinator's Storage on SQLite (better-sqlite3, synchronous): one module per noun, each with its own prepared
// statements; a change and its event share one SQLite transaction, and `transaction` nests as savepoints.
import type Database from 'better-sqlite3';
import type { Storage } from '../storage.js';
import { SqliteAtRisk } from './at-risk.js';
import { SqliteCleanup } from './cleanup.js';
import { SqliteEvents } from './events.js';
import { SqliteMachines } from './machines.js';
import { SqliteOperations } from './operations.js';
import { SqliteSlotRequests } from './requests.js';
import { SqliteSettings } from './settings.js';
import { SqliteSlots } from './slots.js';
import { SqliteStores } from './stores.js';

/** Storage's `transaction` on SQLite: better-sqlite3 makes a nested one a savepoint. */
export function sqliteTransaction(db: Database.Database): Storage['transaction'] {
  return (fn, options) => (options?.immediate ? db.transaction(fn).immediate() : db.transaction(fn)());
}

/** Storage over an open, migrated database (db/open.ts). Statements are prepared here, once. */
export function sqliteStorage(db: Database.Database): Storage {
  const events = new SqliteEvents(db);
  // stores read a slot row when they replace a replica, slots read their store's epoch for their events
  const stores: SqliteStores = new SqliteStores(db, events, (name) => slots.get(name));
  const slots: SqliteSlots = new SqliteSlots(db, events, stores);
  return {
    machines: new SqliteMachines(db, events),
    stores,
    slots,
    requests: new SqliteSlotRequests(db, events, slots, stores),
    operations: new SqliteOperations(db, events),
    atRisk: new SqliteAtRisk(db, events),
    cleanup: new SqliteCleanup(db, events, slots),
    events,
    settings: new SqliteSettings(db),
    transaction: sqliteTransaction(db),
  };
}
