// What the operations between the two slots of one store (switchover, failover, recovery) read on every evaluation:
// the store, both slots and their machines, named in the operation's parameters.
import type { MachineRow, SlotRow, StoreRow } from '../../db/rows.js';
import type { Storage } from '../../db/storage.js';
import type { OperationSnapshot } from './rule.js';

export interface SlotPair {
  store: StoreRow;
  from: SlotRow;
  to: SlotRow;
  fromMachine: MachineRow;
  toMachine: MachineRow;
}

/** A pair operation's snapshot: its parameters, the pair's rows, and which agents are connected. */
export interface PairView<P> extends OperationSnapshot, SlotPair {
  params: P;
  connected: ReadonlySet<string>;
}

/** The pair's rows as they are now; undefined when one of them is gone (the store or a slot removed meanwhile). */
export function pairRows(storage: Storage, store: string | null, names: { from: string; to: string; fromMachine: string; toMachine: string }): SlotPair | undefined {
  const rows = {
    store: store ? storage.stores.get(store) : undefined,
    from: storage.slots.get(names.from),
    to: storage.slots.get(names.to),
    fromMachine: storage.machines.get(names.fromMachine),
    toMachine: storage.machines.get(names.toMachine),
  };
  return rows.store && rows.from && rows.to && rows.fromMachine && rows.toMachine ? (rows as SlotPair) : undefined;
}
