// The coordinator database as the rest of the coordinator sees it: one interface per noun, and `transaction` for
// what must happen together. SQLite implements it (db/sqlite/); a backend on etcd is another implementation of the
// same interface, not a fork of its callers.
//
// Atomic together: a call that writes an event writes it with its change, all or nothing, and the calls marked "one
// transaction" below are all or nothing as a whole (a compare-and-set, or a check and the write it guards). What else
// must happen together the caller wraps in `storage.transaction` (the switchover's flip, the failover's promotion,
// cluster apply, a turn of the session writer…); docs/ARCHITECTURE.md (Storage) lists them.
//
// Calls are synchronous, as better-sqlite3 is; ARCHITECTURE.md says what that asks of a backend on etcd.
import type {
  AtRiskChange,
  AtRiskRow,
  CleanupResultRow,
  CleanupRunFilter,
  CleanupRunRow,
  CleanupSlotRow,
  EventFilter,
  EventInput,
  EventRow,
  MachineInput,
  MachineRow,
  MachineState,
  NewAtRisk,
  NewOperation,
  OperationFilter,
  OperationRow,
  OperationStep,
  PlacedSlotRow,
  MovingReplica,
  ReplicaReplacement,
  RetiredSlotRow,
  SlotReportInput,
  SlotRequest,
  SlotRequestKind,
  SlotRow,
  StoreInput,
  StoreRow,
} from './rows.js';

export interface Storage {
  readonly machines: MachineStorage;
  readonly stores: StoreStorage;
  readonly slots: SlotStorage;
  readonly requests: SlotRequestStorage;
  readonly operations: OperationStorage;
  readonly atRisk: AtRiskStorage;
  readonly cleanup: CleanupStorage;
  readonly events: EventStorage;
  readonly settings: SettingStorage;
  /**
   * Runs `fn` so that every storage call in it takes effect together or not at all: a throw undoes them all and is
   * thrown again. Transactions nest: an inner one that throws undoes only its own calls (a savepoint). The outermost
   * returns once committed (the session writer acknowledges heartbeats only then). `immediate`: no other writer may
   * change what `fn` reads before it commits (cluster apply writes what its checks read).
   */
  transaction<T>(fn: () => T, options?: { immediate?: boolean }): T;
}

export interface MachineStorage {
  list(): MachineRow[];
  get(name: string): MachineRow | undefined;
  /** One transaction: the new state and its `machine.<state>` event; nothing when the state is already that. */
  setState(name: string, state: MachineState, reason: string, data?: unknown): void;
  /** One heartbeat (the session writer commits it with the other writes of its turn). */
  recordHeartbeat(machine: string, at: string): void;
  setAgentVersion(machine: string, version: string): void;
  /** One transaction with its `machine.drained` / `machine.undrained` event; nothing when unchanged. */
  setDrained(machine: string, drained: boolean, reason: string, op?: string): void;
  /** Gone for good: drained (no master), out of placement; its slot rows stay until replaced. One transaction with its event. */
  retire(machine: string, reason: string): void;
  /** Machines holding at least one master that are down or suspect (usually none: read many times a second). */
  withMastersDownOrSuspect(): { machine: string; state: MachineState }[];
  /** Machines sharing at least one store with `machine`. */
  partnersOf(machine: string): string[];
  /** Cluster apply (which writes the events): a declared machine, in state unknown since `at`. */
  add(machine: MachineInput, at: string): void;
  update(machine: MachineInput): void;
  remove(name: string): void;
}

export interface StoreStorage {
  list(): StoreRow[];
  get(name: string): StoreRow | undefined;
  /** The stores whose master slot is on `machine`. */
  masteredOn(machine: string): StoreRow[];
  /**
   * Makes `newMaster` the master of `store`. One transaction: compare-and-set on `expectEpoch` (throws if the epoch
   * moved: a decision taken on a stale view), epoch + 1, the `store.master-changed` event. Returns the new epoch, or
   * the current one when `newMaster` already is master.
   */
  setMaster(store: string, newMaster: string, expectEpoch: number, reason: string, op?: string): number;
  /**
   * Replaces a store's replica slot by a new slot on `machine`. One transaction: compare on `expectEpoch`, the old
   * slot's row moves to the retired slots (its files stay where they are), the new slot takes over its IP (the
   * master keeps its sync_host, so it needs no restart) and is marked seeding by `op` (not promotable until
   * verified), epoch + 1, the `store.replica-replaced` event. Returns the new epoch.
   */
  replaceReplica(input: ReplicaReplacement): number;
  /**
   * A replica move begins: a new slot of the store on `machine`, beside its replica (which keeps replicating), marked
   * seeding by `op`. One transaction: compare on `expectEpoch`, epoch + 1 (the master's desired state now names the
   * new slot, which it replicates to as well), the `store.replica-moving` event. Returns the new epoch.
   */
  addMovingReplica(input: MovingReplica): number;
  /**
   * A replica move ends before its switch (cancelled or failed): the new slot leaves the cluster (its files stay, as a
   * retired slot's do), epoch + 1 (the master stops replicating to it), the `store.replica-move-abandoned` event.
   * Nothing when the slot is gone already. Returns the store's epoch.
   */
  dropMovingReplica(input: { store: string; slot: string; op: string; reason: string }): number;
  /**
   * The switch of a replica move: one transaction, compare on `expectEpoch`: the new slot becomes the store's replica
   * and is no longer marked seeding, the old replica's row moves to the retired slots (its files stay), epoch + 1, the
   * `store.replica-moved` event. Returns the new epoch, or the current one when the slot already is the replica.
   */
  switchToMovedReplica(input: { store: string; slot: string; expectEpoch: number; op: string; reason: string }): number;
  /** Cluster apply (which writes the events): a declared store at epoch 1 with its two slots. */
  add(store: StoreInput, at: string): void;
  /** Cluster apply: a store's service IP and its slots' IPs and paths. */
  update(store: Pick<StoreInput, 'name' | 'serviceIp' | 'slots' | 'growthBytes'>, at: string): void;
  /** Cluster apply: a store and its slots (their report times go with them). */
  remove(name: string): void;
}

export interface SlotStorage {
  list(): SlotRow[];
  get(name: string): SlotRow | undefined;
  ofMachine(machine: string): SlotRow[];
  /** A machine's slots with what its desired state needs of their stores and peers. */
  placedOfMachine(machine: string): PlacedSlotRow[];
  /**
   * What an agent observes of its slots. One transaction for all of them, with the replication stall and resume
   * events they cause (change-events.ts). A report identical to the one stored moves only its time; reports of
   * slots that are not on `machine` are ignored and returned.
   */
  saveReports(machine: string, reports: readonly SlotReportInput[]): string[];
  /** An operator's stop (or start, which also makes a crash-looped slot try again). One transaction with its event. */
  setStopped(name: string, stopped: boolean, reason: string): void;
  /** Keeps a slot stopped for an operation ('' lets it run again). Part of its desired state. */
  setOpHold(slot: string, op: string): void;
  /** Keeps a returning old master stopped until recovery ('' lets it run as replica). Part of its desired state. */
  setRecoveryHold(slot: string, hold: string): void;
  /** Marks a new replica not promotable until `op` verified it ('' clears). */
  setSeeding(slot: string, op: string): void;
  /** Slots replaced by a re-replication, oldest first. */
  retired(machine?: string): RetiredSlotRow[];
}

/**
 * Requests in a slot's desired state (slot_requests): at most one per kind, each carried out once per id by its
 * agent; what the agent reports of them comes back as the slot's results (saveReports).
 */
export interface SlotRequestStorage {
  /**
   * Puts `request` in the slot's desired state, in place of any of its kind (nothing for a slot that does not exist).
   * With `reason`: one transaction with its `slot.<kind>-requested` event.
   */
  put(slot: string, request: SlotRequest, reason?: string): void;
  /** Withdraws the slot's request of `kind`; the last result of that kind stays. */
  withdraw(slot: string, kind: SlotRequestKind): void;
}

export interface OperationStorage {
  /**
   * A new running operation. One transaction: the check that no other operation runs on its store (nor another
   * drain on its machine; else OperationConflict naming it), the row and its `operation.started` event.
   */
  create(input: NewOperation): OperationRow;
  get(id: string): OperationRow | undefined;
  /** Pending and running, oldest first. */
  running(): OperationRow[];
  children(parent: string): OperationRow[];
  list(filter: OperationFilter): OperationRow[];
  /**
   * Moves an operation to its next step before the step's side effect runs. One transaction: compare-and-set on the
   * step (false when the operation was not at `op.step`, running, any more), the result merged, the event.
   */
  advance(op: OperationRow, step: OperationStep): boolean;
  /** Why a running operation waits at its step (written when it changes; `advance` clears it). */
  setWaiting(id: string, waiting: string): void;
  /** One transaction: the stored result read and merged with `patch`. */
  mergeResult(id: string, patch: Record<string, unknown>): void;
  /** One transaction: marks a running operation (false otherwise) and writes the event. */
  requestCancel(id: string, reason: string): boolean;
  /** Stores with a pending or running operation: no other change of master may touch them. */
  busyStores(): Set<string>;
}

export interface AtRiskStorage {
  /** At a failover: what the old master may not have replicated. Returns the record's id. */
  create(input: NewAtRisk): number;
  list(store?: string): AtRiskRow[];
  /** Records not closed yet (the orchestrator looks at them on every evaluation). */
  listOpen(): AtRiskRow[];
  /** The open or recovering record of an old master slot. */
  openOfSlot(slot: string): AtRiskRow | undefined;
  /** One transaction with its `at-risk.<state>` event; recovered and nothing-lost close the record. */
  update(row: AtRiskRow, change: AtRiskChange): void;
}

export interface CleanupStorage {
  /**
   * The slots the cleanup scheduler must look at now (it runs twice a second): running or requested cleanups,
   * nightly turns due by `now`, and the slots named. Each once.
   */
  candidates(input: { now: string; names: readonly string[] }): CleanupSlotRow[];
  /** The last cleanup result the slot's agent reported. */
  lastResult(slot: string): CleanupResultRow | undefined;
  /** Puts a cleanup (cyr_expire) in the slot's desired state. One transaction with its `cleanup.started` event. */
  start(slot: string, op: string, reason: string): void;
  /** Ends a cleanup. One transaction: its run in the history, the slot free for the next at `nextAt`, the event. */
  finish(slot: string, result: CleanupResultRow, nextAt: string, reason: string): void;
  /** An operator asked for a cleanup of the slot (the schedule starts it). */
  request(slot: string, by: string): void;
  /** Runs, newest first. */
  runs(filter: CleanupRunFilter): CleanupRunRow[];
}

export interface EventStorage {
  /** Appends an event (at `at`, now by default); returns its id. */
  append(event: EventInput, at?: string): number;
  /** The newest `limit` events that match, oldest first. */
  list(filter: EventFilter): EventRow[];
  /** The steps an operation took. */
  ofOperation(op: string): EventRow[];
  /** Runs `fn` with every event it appends attributed to `actor` (unless the event names its own); undefined: none. */
  as<T>(actor: string | undefined, fn: () => T): T;
  /** Deletes up to `limit` events older than `before` (not those of a running operation); returns how many. */
  prune(before: string, limit: number): number;
}

export interface SettingStorage {
  get(key: string): string | undefined;
  /** undefined removes the setting. */
  set(key: string, value: string | undefined): void;
}
