// Stores in SQLite: who is master at which epoch (the single truth), a replica replaced by re-replication, and the
// rows cluster apply declares. Every change of master or epoch is one transaction with its event.
import type Database from 'better-sqlite3';
import { nowIso, type MovingReplica, type ReplicaReplacement, type SlotRow, type StoreInput, type StoreRow } from '../rows.js';
import type { StoreStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { toStore, type RawStore } from './raw.js';

export class SqliteStores implements StoreStorage {
  private readonly stmt;

  /** `slot` reads a slot row (the slots noun; replaceReplica moves one). */
  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly slot: (name: string) => SlotRow | undefined) {
    this.stmt = {
      all: db.prepare('SELECT * FROM stores ORDER BY name'),
      one: db.prepare('SELECT * FROM stores WHERE name = ?'),
      masteredOn: db.prepare('SELECT st.* FROM slots s JOIN stores st ON st.master_slot = s.name WHERE s.machine = ? ORDER BY st.name'),
      bumpMaster: db.prepare('UPDATE stores SET master_slot = ?, replica_slot = ?, epoch = epoch + 1, updated_at = ? WHERE name = ? AND epoch = ?'),
      retireSlot: db.prepare('INSERT INTO retired_slots (name, store, machine, ip, data_path, meta_path, replaced_by, op, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      deleteSlot: db.prepare('DELETE FROM slots WHERE name = ?'),
      insertSeedingSlot: db.prepare('INSERT INTO slots (name, store, machine, ip, data_path, meta_path, seeding) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      bumpReplica: db.prepare('UPDATE stores SET replica_slot = ?, epoch = epoch + 1, updated_at = ? WHERE name = ?'),
      bumpEpoch: db.prepare('UPDATE stores SET epoch = epoch + 1, updated_at = ? WHERE name = ?'),
      insertMovingSlot: db.prepare('INSERT INTO slots (name, store, machine, ip, data_path, meta_path, seeding) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      clearSeeding: db.prepare("UPDATE slots SET seeding = '' WHERE name = ?"),
      insert: db.prepare('INSERT INTO stores (name, service_ip, master_slot, replica_slot, epoch, growth_bytes, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?)'),
      update: db.prepare('UPDATE stores SET service_ip = ?, growth_bytes = ?, updated_at = ? WHERE name = ?'),
      insertSlot: db.prepare('INSERT INTO slots (name, store, machine, ip, data_path, meta_path) VALUES (?, ?, ?, ?, ?, ?)'),
      updateSlot: db.prepare('UPDATE slots SET ip = ?, data_path = ?, meta_path = ? WHERE name = ?'),
      delete: db.prepare('DELETE FROM stores WHERE name = ?'),
      deleteSlots: db.prepare('DELETE FROM slots WHERE store = ?'),
    };
  }

  list(): StoreRow[] {
    return (this.stmt.all.all() as RawStore[]).map(toStore);
  }

  get(name: string): StoreRow | undefined {
    const raw = this.stmt.one.get(name) as RawStore | undefined;
    return raw && toStore(raw);
  }

  masteredOn(machine: string): StoreRow[] {
    return (this.stmt.masteredOn.all(machine) as RawStore[]).map(toStore);
  }

  setMaster(store: string, newMaster: string, expectEpoch: number, reason: string, op?: string): number {
    return this.db.transaction(() => {
      const row = this.get(store);
      if (!row) throw new Error(`store ${store} vanished`);
      if (row.masterSlot === newMaster) return row.epoch;
      const replica = row.masterSlot;
      const at = nowIso();
      const changed = this.stmt.bumpMaster.run(newMaster, replica, at, store, expectEpoch).changes;
      if (changed !== 1) throw new Error(`store ${store} changed meanwhile (epoch is ${row.epoch}, expected ${expectEpoch})`);
      const epoch = row.epoch + 1;
      this.events.append({ kind: 'store.master-changed', store, slot: newMaster, epoch, op, reason, data: { from: replica, to: newMaster } }, at);
      return epoch;
    })();
  }

  replaceReplica(input: ReplicaReplacement): number {
    return this.db.transaction(() => {
      const store = this.get(input.store);
      if (!store) throw new Error(`store ${input.store} vanished`);
      if (store.epoch !== input.expectEpoch) throw new Error(`store ${input.store} changed meanwhile (epoch is ${store.epoch}, expected ${input.expectEpoch})`);
      const old = this.slot(store.replicaSlot)!;
      const at = nowIso();
      this.stmt.retireSlot.run(old.name, old.store, old.machine, old.ip, old.dataPath, old.metaPath, input.slot, input.op, at);
      this.stmt.deleteSlot.run(old.name);
      this.stmt.insertSeedingSlot.run(input.slot, input.store, input.machine, old.ip, input.dataPath, input.metaPath, input.op);
      this.stmt.bumpReplica.run(input.slot, at, input.store);
      const epoch = store.epoch + 1;
      this.events.append({ kind: 'store.replica-replaced', store: input.store, slot: input.slot, epoch, op: input.op, reason: input.reason, data: { from: old.name, fromMachine: old.machine, to: input.slot, toMachine: input.machine } }, at);
      return epoch;
    })();
  }

  addMovingReplica(input: MovingReplica): number {
    return this.db.transaction(() => {
      const store = this.expect(input.store, input.expectEpoch);
      const at = nowIso();
      this.stmt.insertMovingSlot.run(input.slot, input.store, input.machine, input.ip, input.dataPath, input.metaPath, input.op);
      this.stmt.bumpEpoch.run(at, input.store);
      const epoch = store.epoch + 1;
      this.events.append({ kind: 'store.replica-moving', store: input.store, slot: input.slot, epoch, op: input.op, reason: input.reason, data: { from: store.replicaSlot, to: input.slot, toMachine: input.machine, ip: input.ip } }, at);
      return epoch;
    })();
  }

  dropMovingReplica(input: { store: string; slot: string; op: string; reason: string }): number {
    return this.db.transaction(() => {
      const store = this.get(input.store);
      if (!store) throw new Error(`store ${input.store} vanished`);
      const slot = this.slot(input.slot);
      if (!slot || slot.store !== input.store || slot.name === store.masterSlot || slot.name === store.replicaSlot) return store.epoch;
      const at = nowIso();
      this.stmt.retireSlot.run(slot.name, slot.store, slot.machine, slot.ip, slot.dataPath, slot.metaPath, '', input.op, at);
      this.stmt.deleteSlot.run(slot.name);
      this.stmt.bumpEpoch.run(at, input.store);
      const epoch = store.epoch + 1;
      this.events.append({ kind: 'store.replica-move-abandoned', store: input.store, slot: slot.name, epoch, op: input.op, reason: input.reason, data: { slot: slot.name, machine: slot.machine } }, at);
      return epoch;
    })();
  }

  switchToMovedReplica(input: { store: string; slot: string; expectEpoch: number; op: string; reason: string }): number {
    return this.db.transaction(() => {
      const current = this.get(input.store);
      if (current?.replicaSlot === input.slot) return current.epoch;
      const store = this.expect(input.store, input.expectEpoch);
      const old = this.slot(store.replicaSlot)!;
      const next = this.slot(input.slot);
      if (!next || next.store !== input.store) throw new Error(`slot ${input.slot} is not a slot of store ${input.store}`);
      const at = nowIso();
      this.stmt.retireSlot.run(old.name, old.store, old.machine, old.ip, old.dataPath, old.metaPath, input.slot, input.op, at);
      this.stmt.deleteSlot.run(old.name);
      this.stmt.clearSeeding.run(input.slot);
      this.stmt.bumpReplica.run(input.slot, at, input.store);
      const epoch = store.epoch + 1;
      this.events.append({ kind: 'store.replica-moved', store: input.store, slot: input.slot, epoch, op: input.op, reason: input.reason, data: { from: old.name, fromMachine: old.machine, to: input.slot, toMachine: next.machine } }, at);
      return epoch;
    })();
  }

  /** The store at `expectEpoch`; throws when it vanished or its epoch moved (a decision taken on a stale view). */
  private expect(name: string, expectEpoch: number): StoreRow {
    const store = this.get(name);
    if (!store) throw new Error(`store ${name} vanished`);
    if (store.epoch !== expectEpoch) throw new Error(`store ${name} changed meanwhile (epoch is ${store.epoch}, expected ${expectEpoch})`);
    return store;
  }

  add(store: StoreInput, at: string): void {
    this.stmt.insert.run(store.name, store.serviceIp, store.masterSlot, store.replicaSlot, store.growthBytes ?? 0, at, at);
    for (const slot of store.slots) this.stmt.insertSlot.run(slot.name, store.name, slot.machine, slot.ip, slot.dataPath, slot.metaPath);
  }

  update(store: Pick<StoreInput, 'name' | 'serviceIp' | 'slots' | 'growthBytes'>, at: string): void {
    this.stmt.update.run(store.serviceIp, store.growthBytes ?? 0, at, store.name);
    for (const slot of store.slots) this.stmt.updateSlot.run(slot.ip, slot.dataPath, slot.metaPath, slot.name);
  }

  remove(name: string): void {
    this.stmt.delete.run(name);
    this.stmt.deleteSlots.run(name);
  }
}
