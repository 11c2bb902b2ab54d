// All SQL lives here. Statements are prepared once; every multi-row change is one transaction, and every change of
// state writes an event row in the same transaction.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';

export type MachineState = 'unknown' | 'up' | 'suspect' | 'down';

export interface DiskRow {
  name: string;
  path: string;
  class: string;
  /** Bytes; absent when the description gives no size. */
  size?: number | undefined;
}

export interface MachineRow {
  name: string;
  address: string;
  disks: DiskRow[];
  drained: boolean;
  state: MachineState;
  stateSince: string;
  lastHeartbeat: string | null;
  agentVersion: string;
  /** How many slots it may run (the planner's capacity). */
  slotCapacity: number;
  rack: string;
  /** When `slotctl machine retire` declared it gone for good; '' otherwise. */
  retiredAt: string;
}

export interface StoreRow {
  name: string;
  serviceIp: string;
  masterSlot: string;
  replicaSlot: string;
  epoch: number;
}

export interface BacklogRow {
  files: number;
  bytes: number;
  mailboxes: number;
  /** The mailboxes named (internal names, at most 200). */
  mailboxNames: string[];
  oldestChangeAgeMs: number;
  stalled: boolean;
  stallReason: string;
}

export interface SlotRow {
  name: string;
  store: string;
  machine: string;
  ip: string;
  dataPath: string;
  metaPath: string;
  observedState: string;
  observedRole: string;
  epochApplied: number;
  backlog: BacklogRow;
  lastError: string;
  reportedAt: string | null;
  adminStopped: boolean;
  pid: number;
  stateReason: string;
  crashes: number;
  recentLog: string[];
  replayOp: string;
  replayResult: ReplayResultRow | undefined;
  /** The operation that keeps this slot stopped (a switchover's old master), or ''. */
  opHold: string;
  checkOp: string;
  checkResult: MailboxCheckRow | undefined;
  syncConfirmedEpoch: number;
  /** The failover that keeps this returning old master stopped until its unreplicated changes are recovered, or ''. */
  recoveryHold: string;
  /** What the agent moved aside when the slot came back as replica (reported). */
  quarantine: QuarantineRow | undefined;
  /** Recovery requests in its desired state, and what the agent reported of them. */
  recoverListen: string;
  recoverOp: string;
  recoverTargetSlot: string;
  recoverMailboxes: string[];
  recoverResult: RecoverResultRow | undefined;
  recoverListening: string;
  /** On a master: the re-replication whose full initial sync it is asked to run, and what it reported. */
  seedOp: string;
  seedResult: SeedResultRow | undefined;
  /** On a new replica: the re-replication that has not yet verified it holds everything (it must not be promoted). */
  seeding: string;
  /** The cleanup (cyr_expire) running on it ('' none), since when, who asked ('' the schedule), when it is due next. */
  cleanupOp: string;
  cleanupStartedAt: string;
  cleanupRequested: string;
  cleanupNextAt: string;
  /** Its partitions, as the agent last measured them. */
  partitions: PartitionRow[];
}

/** What the cleanup scheduler reads of every slot, every check (a narrow row: it runs twice a second). */
export type CleanupSlotRow = Pick<SlotRow, 'name' | 'store' | 'machine' | 'dataPath' | 'metaPath' | 'observedState' | 'cleanupOp' | 'cleanupStartedAt' | 'cleanupRequested' | 'cleanupNextAt' | 'partitions'>;

export interface PartitionRow {
  role: string;
  path: string;
  totalBytes: number;
  freeBytes: number;
  totalInodes: number;
  freeInodes: number;
  deletedBytes: number;
  expungedBytes: number;
  measuredAt: string;
  error: string;
}

export interface CleanupResultRow {
  op: string;
  ok: boolean;
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  ms: number;
  freedBytes: number;
  error: string;
  tail: string[];
}

export interface CleanupRunRow extends CleanupResultRow {
  slot: string;
  store: string;
  machine: string;
  requestedBy: string;
}

export interface SeedResultRow {
  op: string;
  ok: boolean;
  users: number;
  mailboxes: number;
  messages: number;
  ms: number;
  error: string;
  failed: string[];
  finishedAt: string;
}

export interface RetiredSlotRow {
  name: string;
  store: string;
  machine: string;
  ip: string;
  dataPath: string;
  metaPath: string;
  replacedBy: string;
  op: string;
  retiredAt: string;
}

export interface MailboxRecoveryRow {
  name: string;
  result: string;
  detail: string;
  messages: number;
  missing: number;
}

export interface RecoverResultRow {
  op: string;
  done: boolean;
  mailboxes: MailboxRecoveryRow[];
  error: string;
}

export interface QuarantineRow {
  dir: string;
  files: string[];
  /** Internal names the quarantined logs name. */
  mailboxes: string[];
}

export type AtRiskState = 'open' | 'recovering' | 'recovered' | 'nothing-lost';

/** What a failover may have left behind on the old master, and what became of it. */
export interface AtRiskRow {
  id: number;
  store: string;
  slot: string;
  machine: string;
  op: string;
  epoch: number;
  createdAt: string;
  /** The old master's last reported backlog (files, mailboxes named, age of the oldest change) and when. */
  backlog: BacklogRow & { reportedAt: string | null };
  state: AtRiskState;
  /** Mailboxes found in the quarantined sync logs once the machine returned. */
  mailboxes: string[];
  result: Record<string, unknown>;
  closedAt: string | null;
}

export interface MailboxSummaryRow {
  name: string;
  exists: boolean;
  uniqueid: string;
  messages: number;
  uidvalidity: number;
  lastUid: number;
  highestModseq: number;
}

export interface MailboxCheckRow {
  op: string;
  mailboxes: MailboxSummaryRow[];
  error: string;
}

export type OperationKind = 'switchover' | 'drain' | 'failover' | 'recover' | 'rebalance' | 'rereplicate';
export type OperationState = 'running' | 'succeeded' | 'failed' | 'refused' | 'cancelled';

export interface OperationRow {
  id: string;
  kind: OperationKind;
  store: string | null;
  machine: string | null;
  state: OperationState;
  step: string;
  stepSince: string;
  params: Record<string, unknown>;
  result: Record<string, unknown>;
  error: string;
  parent: string | null;
  cancelRequested: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface OperationFilter {
  all: boolean;
  limit: number;
  store?: string | undefined;
  machine?: string | undefined;
}

export interface ReplayResultRow {
  op: string;
  ok: boolean;
  replayed: string[];
  failedFile: string;
  error: string;
  finishedAt: string;
  ms: number;
  mailboxes?: MailboxSummaryRow[];
}

/** A slot with what the desired state needs of its store and peer. */
export interface PlacedSlotRow {
  name: string;
  store: string;
  machine: string;
  ip: string;
  dataPath: string;
  metaPath: string;
  serviceIp: string;
  masterSlot: string;
  epoch: number;
  peerSlot: string | null;
  peerIp: string | null;
  peerMachine: string | null;
  peerAddress: string | null;
  adminStopped: number;
  startGeneration: number;
  replayOp: string;
  opHold: string;
  recoveryHold: string;
  checkOp: string;
  checkMailboxes: string;
  recoverListen: string;
  recoverOp: string;
  recoverTargetIp: string | null;
  recoverTargetSlot: string;
  recoverTargetMachine: string | null;
  recoverMailboxes: string;
  seedOp: string;
  cleanupOp: string;
}

export interface EventInput {
  kind: string;
  reason: string;
  machine?: string | undefined;
  store?: string | undefined;
  slot?: string | undefined;
  epoch?: number | undefined;
  op?: string | undefined;
  data?: unknown;
}

export interface EventRow {
  id: number;
  at: string;
  kind: string;
  machine: string | null;
  store: string | null;
  slot: string | null;
  epoch: number | null;
  op: string | null;
  reason: string;
  data: string | null;
}

export interface EventFilter {
  since?: string | undefined;
  afterId?: number | undefined;
  store?: string | undefined;
  machine?: string | undefined;
  limit: number;
}

export interface SlotReportInput {
  slot: string;
  state: string;
  role: string;
  epochApplied: number;
  backlog: BacklogRow;
  lastError: string;
  pid: number;
  stateReason: string;
  crashes: number;
  recentLog: string[];
  replay: ReplayResultRow | undefined;
  check: MailboxCheckRow | undefined;
  syncConfirmedEpoch: number;
  quarantine: QuarantineRow | undefined;
  recover: RecoverResultRow | undefined;
  recoverListening: string;
  seed: SeedResultRow | undefined;
  cleanup: CleanupResultRow | undefined;
  partitions: PartitionRow[] | undefined;
}

export const EMPTY_BACKLOG: BacklogRow = {
  files: 0,
  bytes: 0,
  mailboxes: 0,
  mailboxNames: [],
  oldestChangeAgeMs: 0,
  stalled: false,
  stallReason: '',
};

interface RawMachine {
  name: string;
  address: string;
  disks: string;
  drained: number;
  state: MachineState;
  state_since: string;
  last_heartbeat: string | null;
  agent_version: string;
  slot_capacity: number;
  rack: string;
  retired_at: string;
}

interface RawSlot {
  name: string;
  store: string;
  machine: string;
  ip: string;
  data_path: string;
  meta_path: string;
  observed_state: string;
  observed_role: string;
  epoch_applied: number;
  backlog: string;
  last_error: string;
  reported_at: string | null;
  /** From slot_reports: the last report, even one that changed nothing (and so did not rewrite this row). */
  seen_at: string | null;
  admin_stopped: number;
  pid: number;
  state_reason: string;
  crashes: number;
  recent_log: string;
  replay_op: string;
  replay_result: string;
  op_hold: string;
  check_op: string;
  check_result: string;
  sync_confirmed_epoch: number;
  recovery_hold: string;
  quarantine: string;
  recover_listen: string;
  recover_op: string;
  recover_target_slot: string;
  recover_mailboxes: string;
  recover_result: string;
  recover_listening: string;
  seed_op: string;
  seed_result: string;
  seeding: string;
  cleanup_op: string;
  cleanup_started_at: string;
  cleanup_requested: string;
  cleanup_next_at: string;
  partitions: string;
}

interface RawOperation {
  id: string;
  kind: OperationKind;
  store: string | null;
  machine: string | null;
  state: OperationState;
  step: string;
  step_since: string;
  params: string;
  result: string;
  error: string;
  parent: string | null;
  cancel_requested: number;
  created_at: string;
  updated_at: string;
}

function toOperation(raw: RawOperation): OperationRow {
  return {
    id: raw.id,
    kind: raw.kind,
    store: raw.store,
    machine: raw.machine,
    state: raw.state,
    step: raw.step,
    stepSince: raw.step_since,
    params: JSON.parse(raw.params) as Record<string, unknown>,
    result: JSON.parse(raw.result) as Record<string, unknown>,
    error: raw.error,
    parent: raw.parent,
    cancelRequested: raw.cancel_requested !== 0,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
  };
}

interface RawStore {
  name: string;
  service_ip: string;
  master_slot: string;
  replica_slot: string;
  epoch: number;
}

function toMachine(raw: RawMachine): MachineRow {
  return {
    name: raw.name,
    address: raw.address,
    disks: JSON.parse(raw.disks) as DiskRow[],
    drained: raw.drained !== 0,
    state: raw.state,
    stateSince: raw.state_since,
    lastHeartbeat: raw.last_heartbeat,
    agentVersion: raw.agent_version,
    slotCapacity: raw.slot_capacity,
    rack: raw.rack,
    retiredAt: raw.retired_at,
  };
}

function toSlot(raw: RawSlot): SlotRow {
  return {
    name: raw.name,
    store: raw.store,
    machine: raw.machine,
    ip: raw.ip,
    dataPath: raw.data_path,
    metaPath: raw.meta_path,
    observedState: raw.observed_state,
    observedRole: raw.observed_role,
    epochApplied: raw.epoch_applied,
    backlog: { ...EMPTY_BACKLOG, ...(JSON.parse(raw.backlog) as Partial<BacklogRow>) },
    lastError: raw.last_error,
    reportedAt: raw.seen_at ?? raw.reported_at,
    adminStopped: raw.admin_stopped !== 0,
    pid: raw.pid,
    stateReason: raw.state_reason,
    crashes: raw.crashes,
    recentLog: JSON.parse(raw.recent_log) as string[],
    replayOp: raw.replay_op,
    replayResult: raw.replay_result === '{}' ? undefined : (JSON.parse(raw.replay_result) as ReplayResultRow),
    opHold: raw.op_hold,
    checkOp: raw.check_op,
    checkResult: raw.check_result === '{}' ? undefined : (JSON.parse(raw.check_result) as MailboxCheckRow),
    syncConfirmedEpoch: raw.sync_confirmed_epoch,
    recoveryHold: raw.recovery_hold,
    quarantine: raw.quarantine === '{}' ? undefined : (JSON.parse(raw.quarantine) as QuarantineRow),
    recoverListen: raw.recover_listen,
    recoverOp: raw.recover_op,
    recoverTargetSlot: raw.recover_target_slot,
    recoverMailboxes: JSON.parse(raw.recover_mailboxes) as string[],
    recoverResult: raw.recover_result === '{}' ? undefined : (JSON.parse(raw.recover_result) as RecoverResultRow),
    recoverListening: raw.recover_listening,
    seedOp: raw.seed_op,
    seedResult: raw.seed_result === '{}' ? undefined : (JSON.parse(raw.seed_result) as SeedResultRow),
    seeding: raw.seeding,
    cleanupOp: raw.cleanup_op,
    cleanupStartedAt: raw.cleanup_started_at,
    cleanupRequested: raw.cleanup_requested,
    cleanupNextAt: raw.cleanup_next_at,
    partitions: JSON.parse(raw.partitions) as PartitionRow[],
  };
}

interface RawAtRisk {
  id: number;
  store: string;
  slot: string;
  machine: string;
  op: string;
  epoch: number;
  created_at: string;
  backlog: string;
  state: AtRiskState;
  mailboxes: string;
  result: string;
  closed_at: string | null;
}

function toAtRisk(raw: RawAtRisk): AtRiskRow {
  return {
    id: raw.id,
    store: raw.store,
    slot: raw.slot,
    machine: raw.machine,
    op: raw.op,
    epoch: raw.epoch,
    createdAt: raw.created_at,
    backlog: JSON.parse(raw.backlog) as AtRiskRow['backlog'],
    state: raw.state,
    mailboxes: JSON.parse(raw.mailboxes) as string[],
    result: JSON.parse(raw.result) as Record<string, unknown>,
    closedAt: raw.closed_at,
  };
}

function toStore(raw: RawStore): StoreRow {
  return {
    name: raw.name,
    serviceIp: raw.service_ip,
    masterSlot: raw.master_slot,
    replicaSlot: raw.replica_slot,
    epoch: raw.epoch,
  };
}

/** A second operation on a store (or a second drain of a machine) while one runs. */
export class OperationConflict extends Error {
  constructor(readonly running: OperationRow) {
    super(`operation ${running.id} (${running.kind}${running.store ? ` of store ${running.store}` : ''}${running.machine ? ` of machine ${running.machine}` : ''}) is running, at step ${running.step}`);
    this.name = 'OperationConflict';
  }
}

export function nowIso(): string {
  return new Date().toISOString();
}

interface RawCleanupSlot {
  name: string;
  store: string;
  machine: string;
  data_path: string;
  meta_path: string;
  observed_state: string;
  cleanup_op: string;
  cleanup_started_at: string;
  cleanup_requested: string;
  cleanup_next_at: string;
  partitions: string;
}

/** What a report would write into its slot row, as a short digest (each value with its kind and length). */
function reportDigest(row: Record<string, string | number | null>): string {
  const hash = createHash('sha256');
  for (const v of Object.values(row)) {
    const text = v === null ? '' : String(v);
    hash.update(`${v === null ? 'x' : typeof v === 'number' ? 'n' : 's'}${text.length}:`).update(text);
  }
  return hash.digest('base64url').slice(0, 22);
}

/** A slot row with the time of its last report (kept apart: see saveSlotReports). */
const SLOT_SELECT = 'SELECT s.*, r.reported_at AS seen_at FROM slots s LEFT JOIN slot_reports r ON r.name = s.name';

export class Repository {
  private readonly stmt;

  constructor(readonly db: Database.Database) {
    this.stmt = {
      machines: db.prepare('SELECT * FROM machines ORDER BY name'),
      machine: db.prepare('SELECT * FROM machines WHERE name = ?'),
      stores: db.prepare('SELECT * FROM stores ORDER BY name'),
      store: db.prepare('SELECT * FROM stores WHERE name = ?'),
      slots: db.prepare(`${SLOT_SELECT} ORDER BY s.name`),
      slotsOfMachine: db.prepare(`${SLOT_SELECT} WHERE s.machine = ? ORDER BY s.name`),
      placedSlots: db.prepare(
        `SELECT s.name, s.store, s.machine, s.ip, s.data_path AS dataPath, s.meta_path AS metaPath,
                st.service_ip AS serviceIp, st.master_slot AS masterSlot, st.epoch, p.name AS peerSlot, p.ip AS peerIp, p.machine AS peerMachine, pm.address AS peerAddress, s.admin_stopped AS adminStopped, s.start_generation AS startGeneration, s.replay_op AS replayOp,
                s.op_hold AS opHold, s.recovery_hold AS recoveryHold, s.check_op AS checkOp, s.check_mailboxes AS checkMailboxes,
                s.recover_listen AS recoverListen, s.recover_op AS recoverOp, s.recover_target_slot AS recoverTargetSlot,
                t.ip AS recoverTargetIp, t.machine AS recoverTargetMachine, s.recover_mailboxes AS recoverMailboxes, s.seed_op AS seedOp, s.cleanup_op AS cleanupOp
         FROM slots s JOIN stores st ON st.name = s.store
         LEFT JOIN slots p ON p.store = s.store AND p.name <> s.name
         LEFT JOIN machines pm ON pm.name = p.machine
         LEFT JOIN slots t ON t.name = s.recover_target_slot
         WHERE s.machine = ? ORDER BY s.name`,
      ),
      setMachineState: db.prepare('UPDATE machines SET state = ?, state_since = ? WHERE name = ?'),
      heartbeat: db.prepare('UPDATE machines SET last_heartbeat = ? WHERE name = ?'),
      agentVersion: db.prepare('UPDATE machines SET agent_version = ? WHERE name = ?'),
      slotReport: db.prepare(
        `UPDATE slots SET observed_state = @state, observed_role = @role, epoch_applied = @epochApplied,
           backlog = @backlog, last_error = @lastError, reported_at = @at, pid = @pid, state_reason = @stateReason,
           crashes = @crashes, recent_log = @recentLog,
           replay_result = CASE WHEN @replay IS NULL THEN replay_result ELSE @replay END,
           check_result = CASE WHEN @check IS NULL THEN check_result ELSE @check END,
           sync_confirmed_epoch = MAX(sync_confirmed_epoch, @syncConfirmedEpoch),
           quarantine = CASE WHEN @quarantine IS NULL THEN quarantine ELSE @quarantine END,
           recover_result = CASE WHEN @recover IS NULL THEN recover_result ELSE @recover END,
           recover_listening = @recoverListening,
           seed_result = CASE WHEN @seed IS NULL THEN seed_result ELSE @seed END,
           cleanup_result = CASE WHEN @cleanup IS NULL THEN cleanup_result ELSE @cleanup END,
           partitions = CASE WHEN @partitions IS NULL THEN partitions ELSE @partitions END
         WHERE name = @slot AND machine = @machine`,
      ),
      slot: db.prepare(`${SLOT_SELECT} WHERE s.name = ?`),
      slotBacklog: db.prepare('SELECT backlog, store FROM slots WHERE name = ? AND machine = ?'),
      reportUnchanged: db.prepare('UPDATE slot_reports SET reported_at = ? WHERE name = ? AND machine = ? AND digest = ?'),
      reportWritten: db.prepare(
        `INSERT INTO slot_reports (name, machine, reported_at, digest) VALUES (@slot, @machine, @at, @digest)
         ON CONFLICT(name) DO UPDATE SET machine = excluded.machine, reported_at = excluded.reported_at, digest = excluded.digest`,
      ),
      setReplayOp: db.prepare('UPDATE slots SET replay_op = ? WHERE name = ?'),
      setStopped: db.prepare('UPDATE slots SET admin_stopped = ?, start_generation = start_generation + ? WHERE name = ?'),
      insertEvent: db.prepare(
        `INSERT INTO events (at, kind, machine, store, slot, epoch, op, reason, data)
         VALUES (@at, @kind, @machine, @store, @slot, @epoch, @op, @reason, @data)`,
      ),
      busyStores: db.prepare("SELECT DISTINCT store FROM operations WHERE store IS NOT NULL AND state IN ('pending', 'running')"),
      setOpHold: db.prepare('UPDATE slots SET op_hold = ? WHERE name = ?'),
      setRecoveryHold: db.prepare('UPDATE slots SET recovery_hold = ? WHERE name = ?'),
      setRecoverListen: db.prepare('UPDATE slots SET recover_listen = ? WHERE name = ?'),
      setRecoverPush: db.prepare('UPDATE slots SET recover_op = ?, recover_target_slot = ?, recover_mailboxes = ? WHERE name = ?'),
      insertAtRisk: db.prepare(
        `INSERT INTO at_risk (store, slot, machine, op, epoch, created_at, backlog, state, mailboxes)
         VALUES (@store, @slot, @machine, @op, @epoch, @at, @backlog, 'open', @mailboxes)`,
      ),
      atRiskAll: db.prepare('SELECT * FROM at_risk ORDER BY id'),
      atRiskOpen: db.prepare('SELECT * FROM at_risk WHERE closed_at IS NULL ORDER BY id'),
      atRiskOfStore: db.prepare('SELECT * FROM at_risk WHERE store = ? ORDER BY id'),
      atRiskOpenOfSlot: db.prepare(`SELECT * FROM at_risk WHERE slot = ? AND state IN ('open', 'recovering')`),
      updateAtRisk: db.prepare('UPDATE at_risk SET state = @state, mailboxes = @mailboxes, result = @result, closed_at = @closedAt WHERE id = @id'),
      partnersOf: db.prepare(
        `SELECT DISTINCT p.machine FROM slots s JOIN slots p ON p.store = s.store AND p.machine <> s.machine WHERE s.machine = ? ORDER BY p.machine`,
      ),
      setCheck: db.prepare('UPDATE slots SET check_op = ?, check_mailboxes = ? WHERE name = ?'),
      setDrained: db.prepare('UPDATE machines SET drained = ? WHERE name = ?'),
      insertOperation: db.prepare(
        `INSERT INTO operations (id, kind, store, machine, state, step, step_since, params, parent, created_at, updated_at)
         VALUES (@id, @kind, @store, @machine, 'running', @step, @at, @params, @parent, @at, @at)`,
      ),
      operation: db.prepare('SELECT * FROM operations WHERE id = ?'),
      runningOperations: db.prepare("SELECT * FROM operations WHERE state IN ('pending', 'running') ORDER BY created_at, id"),
      runningOnStore: db.prepare("SELECT * FROM operations WHERE store = ? AND state IN ('pending', 'running')"),
      runningDrain: db.prepare("SELECT * FROM operations WHERE machine = ? AND kind = 'drain' AND state IN ('pending', 'running')"),
      childOperations: db.prepare('SELECT * FROM operations WHERE parent = ? ORDER BY created_at, id'),
      advanceOperation: db.prepare(
        `UPDATE operations SET step = @to, state = @state, step_since = @at, updated_at = @at, error = @error,
           result = @result WHERE id = @id AND step = @from AND state = 'running'`,
      ),
      setOperationResult: db.prepare('UPDATE operations SET result = ?, updated_at = ? WHERE id = ?'),
      requestCancel: db.prepare("UPDATE operations SET cancel_requested = 1, updated_at = ? WHERE id = ? AND state = 'running'"),
      // the orchestrator's level-triggered checks run many times a second: they read only what they need
      mastersDownOrSuspect: db.prepare(
        `SELECT m.name AS machine, m.state FROM machines m
         WHERE m.state IN ('down', 'suspect')
           AND EXISTS (SELECT 1 FROM slots s JOIN stores st ON st.master_slot = s.name WHERE s.machine = m.name)
         ORDER BY m.name`,
      ),
      storesMasteredOn: db.prepare('SELECT st.* FROM slots s JOIN stores st ON st.master_slot = s.name WHERE s.machine = ? ORDER BY st.name'),
      // each branch on its own index (migration 7; UNION would merge-scan the whole table): running, requested, due
      // by `now`, and the slots named; a slot in two branches is dropped by cleanupCandidates
      cleanupCandidates: db.prepare(
        ["cleanup_op <> ''", "cleanup_requested <> ''", "cleanup_next_at <> '' AND cleanup_next_at <= @now", 'name IN (SELECT value FROM json_each(@names))']
          .map((where) => `SELECT name, store, machine, data_path, meta_path, observed_state, cleanup_op, cleanup_started_at, cleanup_requested, cleanup_next_at, partitions FROM slots WHERE ${where}`)
          .join(' UNION ALL '),
      ),
      setting: db.prepare('SELECT value FROM settings WHERE key = ?'),
      bumpMaster: db.prepare(
        'UPDATE stores SET master_slot = ?, replica_slot = ?, epoch = epoch + 1, updated_at = ? WHERE name = ? AND epoch = ?',
      ),
    };
  }

  listMachines(): MachineRow[] {
    return (this.stmt.machines.all() as RawMachine[]).map(toMachine);
  }

  getMachine(name: string): MachineRow | undefined {
    const raw = this.stmt.machine.get(name) as RawMachine | undefined;
    return raw && toMachine(raw);
  }

  listStores(): StoreRow[] {
    return (this.stmt.stores.all() as RawStore[]).map(toStore);
  }

  getStore(name: string): StoreRow | undefined {
    const raw = this.stmt.store.get(name) as RawStore | undefined;
    return raw && toStore(raw);
  }

  listSlots(): SlotRow[] {
    return (this.stmt.slots.all() as RawSlot[]).map(toSlot);
  }

  getSlot(name: string): SlotRow | undefined {
    const raw = this.stmt.slot.get(name) as RawSlot | undefined;
    return raw && toSlot(raw);
  }

  /**
   * An operator's stop (or start) of one slot: part of its desired state from now on. A start also bumps the
   * slot's start generation, which makes a slot that gave up after a crash loop try again.
   */
  setSlotStopped(name: string, stopped: boolean, reason: string): void {
    this.db.transaction(() => {
      const slot = this.getSlot(name);
      if (!slot) return;
      this.stmt.setStopped.run(stopped ? 1 : 0, stopped ? 0 : 1, name);
      const store = this.getStore(slot.store);
      this.insertEvent({ kind: stopped ? 'slot.stop-requested' : 'slot.start-requested', machine: slot.machine, store: slot.store, slot: name, epoch: store?.epoch, reason });
    })();
  }

  /** Asks the agent to replay a stopped slot's leftover sync logs, once, under a new operation id. */
  requestReplay(name: string, op: string, reason: string): void {
    this.db.transaction(() => {
      const slot = this.getSlot(name);
      if (!slot) return;
      this.stmt.setReplayOp.run(op, name);
      const store = this.getStore(slot.store);
      this.insertEvent({ kind: 'slot.replay-requested', machine: slot.machine, store: slot.store, slot: name, epoch: store?.epoch, op, reason });
    })();
  }

  slotsOfMachine(machine: string): SlotRow[] {
    return (this.stmt.slotsOfMachine.all(machine) as RawSlot[]).map(toSlot);
  }

  placedSlotsOfMachine(machine: string): PlacedSlotRow[] {
    return this.stmt.placedSlots.all(machine) as PlacedSlotRow[];
  }

  /** Stores with a pending or running operation: no other change of master may touch them. */
  busyStores(): Set<string> {
    return new Set((this.stmt.busyStores.all() as { store: string }[]).map((r) => r.store));
  }

  insertEvent(event: EventInput, at = nowIso()): number {
    const result = this.stmt.insertEvent.run({
      at,
      kind: event.kind,
      machine: event.machine ?? null,
      store: event.store ?? null,
      slot: event.slot ?? null,
      epoch: event.epoch ?? null,
      op: event.op ?? null,
      reason: event.reason,
      data: event.data === undefined ? null : JSON.stringify(event.data),
    });
    return Number(result.lastInsertRowid);
  }

  setMachineState(name: string, state: MachineState, reason: string, data?: unknown): void {
    const at = nowIso();
    this.db.transaction(() => {
      const before = this.getMachine(name);
      if (!before || before.state === state) return;
      this.stmt.setMachineState.run(state, at, name);
      this.insertEvent({ kind: `machine.${state}`, machine: name, reason, data: { from: before.state, ...(data ?? {}) } }, at);
    })();
  }

  /** One heartbeat: the session layer commits it with the other writes of its turn. */
  recordHeartbeat(machine: string, at: string): void {
    this.stmt.heartbeat.run(at, machine);
  }

  setAgentVersion(machine: string, version: string): void {
    this.stmt.agentVersion.run(version, machine);
  }

  /**
   * Stores what an agent observes of its slots; reports for slots that are not on that machine are ignored. A slot
   * row carries its reports (kilobytes of log lines and partitions): rewriting 18 of them for every report of every
   * agent made the WAL and its checkpoints the coordinator's main work, and after a restart every agent's hello says
   * what the rows already hold. So a report identical to the one stored (same digest, same machine) only moves its
   * time in the narrow slot_reports table, and the slot row is not even read; one that differs rewrites the row.
   */
  saveSlotReports(machine: string, reports: readonly SlotReportInput[]): string[] {
    const at = nowIso();
    const ignored: string[] = [];
    this.db.transaction(() => {
      for (const report of reports) {
        const row = {
          state: report.state,
          role: report.role,
          epochApplied: report.epochApplied,
          backlog: JSON.stringify(report.backlog),
          lastError: report.lastError,
          pid: report.pid,
          stateReason: report.stateReason,
          crashes: report.crashes,
          recentLog: JSON.stringify(report.recentLog),
          replay: report.replay ? JSON.stringify(report.replay) : null,
          check: report.check ? JSON.stringify(report.check) : null,
          syncConfirmedEpoch: report.syncConfirmedEpoch,
          quarantine: report.quarantine ? JSON.stringify(report.quarantine) : null,
          recover: report.recover ? JSON.stringify(report.recover) : null,
          recoverListening: report.recoverListening,
          seed: report.seed ? JSON.stringify(report.seed) : null,
          cleanup: report.cleanup ? JSON.stringify(report.cleanup) : null,
          partitions: report.partitions?.length ? JSON.stringify(report.partitions) : null,
        };
        const digest = reportDigest(row);
        // the same as last time, from this machine: one narrow row moves its time, the slot row is not read
        if (this.stmt.reportUnchanged.run(at, report.slot, machine, digest).changes === 1) continue;
        const before = this.stmt.slotBacklog.get(report.slot, machine) as { backlog: string; store: string } | undefined;
        if (!before) {
          ignored.push(report.slot);
          continue;
        }
        this.stmt.slotReport.run({ ...row, slot: report.slot, machine, at });
        this.stmt.reportWritten.run({ slot: report.slot, machine, at, digest });
        this.stallEvent(machine, before.store, report.slot, (JSON.parse(before.backlog) as Partial<BacklogRow>).stalled === true, report.backlog, at);
      }
    })();
    return ignored;
  }

  /**
   * Replication that stops moving is an event when it starts and when it ends. A rolling sync_client that keeps
   * failing although the replica accepts connections is critical: measured, it loops on one mailbox for ever and
   * replicates nothing else of the slot; the reason carries the last SYNCERROR/IOERROR line, which names it.
   */
  private stallEvent(machine: string, store: string, slot: string, wasStalled: boolean, now: BacklogRow, at: string): void {
    if (wasStalled === now.stalled) return;
    const stuck = /accepts connections/.test(now.stallReason);
    const epoch = this.getStore(store)?.epoch;
    if (now.stalled) {
      this.insertEvent({ kind: stuck ? 'slot.replication-stuck' : 'slot.replication-stalled', machine, store, slot, epoch, reason: now.stallReason, data: { severity: stuck ? 'critical' : 'warning', files: now.files, mailboxes: now.mailboxes } }, at);
    } else {
      this.insertEvent({ kind: 'slot.replication-resumed', machine, store, slot, epoch, reason: `replication moves again (${now.files} log file(s) left)` }, at);
    }
  }

  /**
   * Makes `newMaster` the master of `store`: one transaction that bumps the epoch and writes the event. `expectEpoch`
   * guards against a decision taken on a stale view (the update matches nothing if the epoch moved meanwhile).
   */
  setMaster(store: string, newMaster: string, expectEpoch: number, reason: string, op?: string): number {
    return this.db.transaction(() => {
      const row = this.getStore(store);
      if (!row) throw new Error(`store ${store} vanished`);
      if (row.masterSlot === newMaster) return row.epoch;
      const replica = row.masterSlot;
      const at = nowIso();
      const changed = this.stmt.bumpMaster.run(newMaster, replica, at, store, expectEpoch).changes;
      if (changed !== 1) throw new Error(`store ${store} changed meanwhile (epoch is ${row.epoch}, expected ${expectEpoch})`);
      const epoch = row.epoch + 1;
      this.insertEvent({ kind: 'store.master-changed', store, slot: newMaster, epoch, op, reason, data: { from: replica, to: newMaster } }, at);
      return epoch;
    })();
  }

  /** Keeps a returning old master stopped until recovery ('' lets it run as replica). Part of its desired state. */
  setRecoveryHold(slot: string, hold: string): void {
    this.stmt.setRecoveryHold.run(hold, slot);
  }

  /** Opens ('' closes) a new master's temporary sync_server for a recovery. */
  setRecoverListen(slot: string, op: string): void {
    this.stmt.setRecoverListen.run(op, slot);
  }

  /** Asks a returning slot to push these mailboxes to `target` for `op` ('' clears the request). */
  setRecoverPush(slot: string, op: string, target: string, mailboxes: readonly string[]): void {
    this.stmt.setRecoverPush.run(op, target, JSON.stringify(mailboxes), slot);
  }

  /** At a failover: what the old master may not have replicated (its last reported backlog). */
  openAtRisk(input: { store: string; slot: string; machine: string; op: string; epoch: number; backlog: AtRiskRow['backlog'] }): number {
    const result = this.stmt.insertAtRisk.run({ ...input, backlog: JSON.stringify(input.backlog), mailboxes: JSON.stringify(input.backlog.mailboxNames ?? []), at: nowIso() });
    return Number(result.lastInsertRowid);
  }

  listAtRisk(store?: string): AtRiskRow[] {
    const rows = (store ? this.stmt.atRiskOfStore.all(store) : this.stmt.atRiskAll.all()) as RawAtRisk[];
    return rows.map(toAtRisk);
  }

  /** Records not closed yet (what the orchestrator looks at on every evaluation). */
  listOpenAtRisk(): AtRiskRow[] {
    return (this.stmt.atRiskOpen.all() as RawAtRisk[]).map(toAtRisk);
  }

  openAtRiskOfSlot(slot: string): AtRiskRow | undefined {
    const raw = this.stmt.atRiskOpenOfSlot.get(slot) as RawAtRisk | undefined;
    return raw && toAtRisk(raw);
  }

  updateAtRisk(row: AtRiskRow, change: { state: AtRiskState; mailboxes?: string[]; result?: Record<string, unknown>; reason: string; op?: string }): void {
    const closed = change.state === 'recovered' || change.state === 'nothing-lost';
    this.db.transaction(() => {
      this.stmt.updateAtRisk.run({
        id: row.id,
        state: change.state,
        mailboxes: JSON.stringify(change.mailboxes ?? row.mailboxes),
        result: JSON.stringify(change.result ?? row.result),
        closedAt: closed ? nowIso() : null,
      });
      this.insertEvent({ kind: `at-risk.${change.state}`, store: row.store, slot: row.slot, machine: row.machine, op: change.op ?? row.op, reason: change.reason, data: { atRisk: row.id } });
    })();
  }

  /** Machines sharing at least one store with `machine`. */
  partnersOf(machine: string): string[] {
    return (this.stmt.partnersOf.all(machine) as { machine: string }[]).map((r) => r.machine);
  }

  /** Keeps a slot stopped for an operation (op = '') or lets it run again. Part of its desired state. */
  setOpHold(slot: string, op: string): void {
    this.stmt.setOpHold.run(op, slot);
  }

  /** Asks the slot's agent to summarize these mailboxes once for `op` ('' clears the request). */
  setCheck(slot: string, op: string, mailboxes: readonly string[]): void {
    this.stmt.setCheck.run(op, JSON.stringify(mailboxes), slot);
  }

  /** A machine gone for good: drained (no master), excluded from placement; its slot rows stay until replaced. */
  retireMachine(machine: string, reason: string): void {
    this.db.transaction(() => {
      const before = this.getMachine(machine);
      if (!before || before.retiredAt) return;
      const at = nowIso();
      this.db.prepare('UPDATE machines SET retired_at = ?, drained = 1 WHERE name = ?').run(at, machine);
      this.insertEvent({ kind: 'machine.retired', machine, reason }, at);
    })();
  }

  /**
   * Replaces a store's replica slot by a new slot on `machine`, in one transaction: the old slot's row moves to
   * retired_slots (its files stay where they are), the new slot takes over its IP (the master's config
   * keeps its sync_host, so it needs no restart), is marked as seeding by `op` (not promotable until verified),
   * and the store's epoch goes up by one.
   */
  replaceReplica(input: { store: string; machine: string; slot: string; dataPath: string; metaPath: string; expectEpoch: number; op: string; reason: string }): number {
    return this.db.transaction(() => {
      const store = this.getStore(input.store);
      if (!store) throw new Error(`store ${input.store} vanished`);
      if (store.epoch !== input.expectEpoch) throw new Error(`store ${input.store} changed meanwhile (epoch is ${store.epoch}, expected ${input.expectEpoch})`);
      const old = this.getSlot(store.replicaSlot)!;
      const at = nowIso();
      this.db
        .prepare('INSERT INTO retired_slots (name, store, machine, ip, data_path, meta_path, replaced_by, op, retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(old.name, old.store, old.machine, old.ip, old.dataPath, old.metaPath, input.slot, input.op, at);
      this.db.prepare('DELETE FROM slots WHERE name = ?').run(old.name);
      this.db.prepare('INSERT INTO slots (name, store, machine, ip, data_path, meta_path, seeding) VALUES (?, ?, ?, ?, ?, ?, ?)').run(input.slot, input.store, input.machine, old.ip, input.dataPath, input.metaPath, input.op);
      this.db.prepare('UPDATE stores SET replica_slot = ?, epoch = epoch + 1, updated_at = ? WHERE name = ?').run(input.slot, at, input.store);
      const epoch = store.epoch + 1;
      this.insertEvent({ kind: 'store.replica-replaced', store: input.store, slot: input.slot, epoch, op: input.op, reason: input.reason, data: { from: old.name, fromMachine: old.machine, to: input.slot, toMachine: input.machine } }, at);
      return epoch;
    })();
  }

  /** The last cleanup result the slot's agent reported (a result row is written once, when recorded). */
  cleanupResult(slot: string): CleanupResultRow | undefined {
    const raw = this.db.prepare('SELECT cleanup_result FROM slots WHERE name = ?').get(slot) as { cleanup_result: string } | undefined;
    return raw && raw.cleanup_result !== '{}' ? (JSON.parse(raw.cleanup_result) as CleanupResultRow) : undefined;
  }

  startCleanup(slot: string, op: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.getSlot(slot)!;
      const at = nowIso();
      this.db.prepare('UPDATE slots SET cleanup_op = ?, cleanup_started_at = ? WHERE name = ?').run(op, at, slot);
      this.insertEvent({ kind: 'cleanup.started', machine: row.machine, store: row.store, slot, op, reason }, at);
    })();
  }

  /** Ends a cleanup: its run is written to the history, the slot is free for the next one at `nextAt`. */
  finishCleanup(slot: string, result: CleanupResultRow, nextAt: string, reason: string): void {
    this.db.transaction(() => {
      const row = this.getSlot(slot)!;
      const at = nowIso();
      this.db
        .prepare(
          `INSERT OR IGNORE INTO cleanup_runs (slot, store, machine, op, requested_by, started_at, finished_at, ok, exit_code, ms, freed_bytes, error, tail)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(slot, row.store, row.machine, result.op, row.cleanupRequested || 'schedule', result.startedAt || row.cleanupStartedAt, result.finishedAt || at, result.ok ? 1 : 0, result.exitCode, result.ms, result.freedBytes, result.error, JSON.stringify(result.tail));
      this.db.prepare("UPDATE slots SET cleanup_op = '', cleanup_started_at = '', cleanup_requested = '', cleanup_next_at = ? WHERE name = ?").run(nextAt, slot);
      this.insertEvent(
        { kind: result.ok ? 'cleanup.done' : 'cleanup.failed', machine: row.machine, store: row.store, slot, op: result.op, reason, data: { ms: result.ms, freedBytes: result.freedBytes, exitCode: result.exitCode, tail: result.ok ? [] : result.tail.slice(-10), severity: result.ok ? 'info' : 'warning' } },
        at,
      );
    })();
  }

  requestCleanup(slot: string, by: string): void {
    this.db.prepare('UPDATE slots SET cleanup_requested = ? WHERE name = ?').run(by, slot);
  }

  listCleanupRuns(filter: { slot?: string; machine?: string; limit: number }): CleanupRunRow[] {
    const where = filter.slot ? 'WHERE slot = @slot' : filter.machine ? 'WHERE machine = @machine' : '';
    const rows = this.db.prepare(`SELECT * FROM cleanup_runs ${where} ORDER BY id DESC LIMIT @limit`).all({ slot: filter.slot, machine: filter.machine, limit: filter.limit }) as {
      slot: string; store: string; machine: string; op: string; requested_by: string; started_at: string; finished_at: string; ok: number; exit_code: number; ms: number; freed_bytes: number; error: string; tail: string;
    }[];
    return rows.map((r) => ({ slot: r.slot, store: r.store, machine: r.machine, op: r.op, requestedBy: r.requested_by, startedAt: r.started_at, finishedAt: r.finished_at, ok: r.ok !== 0, exitCode: r.exit_code, ms: r.ms, freedBytes: r.freed_bytes, error: r.error, tail: JSON.parse(r.tail) as string[] }));
  }

  getSetting(key: string): string | undefined {
    return (this.stmt.setting.get(key) as { value: string } | undefined)?.value;
  }

  /** Machines holding at least one master that are down or suspect (usually none: no slot is read then). */
  machinesWithMastersDownOrSuspect(): { machine: string; state: MachineState }[] {
    return this.stmt.mastersDownOrSuspect.all() as { machine: string; state: MachineState }[];
  }

  /** The stores whose master slot is on `machine`. */
  storesMasteredOn(machine: string): StoreRow[] {
    return (this.stmt.storesMasteredOn.all(machine) as RawStore[]).map(toStore);
  }

  /**
   * The slots the cleanup scheduler must look at now (it runs twice a second, and a slot row carries its reports:
   * reading all 18,000 of a large cluster each time cost more than everything else together): running or requested
   * cleanups, nightly turns due by `now`, and the slots named (disks that changed level or are critical, first turns).
   */
  cleanupCandidates(input: { now: string; names: readonly string[] }): CleanupSlotRow[] {
    const seen = new Set<string>();
    const rows = (this.stmt.cleanupCandidates.all({ now: input.now, names: JSON.stringify(input.names) }) as RawCleanupSlot[]).filter((r) => !seen.has(r.name) && seen.add(r.name));
    return rows.map((r) => ({
      name: r.name,
      store: r.store,
      machine: r.machine,
      dataPath: r.data_path,
      metaPath: r.meta_path,
      observedState: r.observed_state,
      cleanupOp: r.cleanup_op,
      cleanupStartedAt: r.cleanup_started_at,
      cleanupRequested: r.cleanup_requested,
      cleanupNextAt: r.cleanup_next_at,
      partitions: JSON.parse(r.partitions) as PartitionRow[],
    }));
  }

  setSetting(key: string, value: string | undefined): void {
    if (value === undefined) this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
    else this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  setSeedOp(slot: string, op: string): void {
    this.db.prepare('UPDATE slots SET seed_op = ? WHERE name = ?').run(op, slot);
  }

  setSeeding(slot: string, op: string): void {
    this.db.prepare('UPDATE slots SET seeding = ? WHERE name = ?').run(op, slot);
  }

  listRetiredSlots(machine?: string): RetiredSlotRow[] {
    const rows = (machine ? this.db.prepare('SELECT * FROM retired_slots WHERE machine = ? ORDER BY id').all(machine) : this.db.prepare('SELECT * FROM retired_slots ORDER BY id').all()) as {
      name: string; store: string; machine: string; ip: string; data_path: string; meta_path: string; replaced_by: string; op: string; retired_at: string;
    }[];
    return rows.map((r) => ({ name: r.name, store: r.store, machine: r.machine, ip: r.ip, dataPath: r.data_path, metaPath: r.meta_path, replacedBy: r.replaced_by, op: r.op, retiredAt: r.retired_at }));
  }

  setDrained(machine: string, drained: boolean, reason: string, op?: string): void {
    this.db.transaction(() => {
      const before = this.getMachine(machine);
      if (!before || before.drained === drained) return;
      this.stmt.setDrained.run(drained ? 1 : 0, machine);
      this.insertEvent({ kind: drained ? 'machine.drained' : 'machine.undrained', machine, op, reason });
    })();
  }

  /**
   * Records a new running operation. The database allows one running operation per store and one drain per
   * machine: a second one is refused with the id of the one that runs.
   */
  createOperation(input: { id: string; kind: OperationKind; store?: string; machine?: string; parent?: string; step: string; params: Record<string, unknown>; reason: string; epoch?: number }): OperationRow {
    return this.db.transaction(() => {
      const busy = input.store ? (this.stmt.runningOnStore.get(input.store) as RawOperation | undefined) : input.kind === 'drain' ? (this.stmt.runningDrain.get(input.machine) as RawOperation | undefined) : undefined;
      if (busy) throw new OperationConflict(toOperation(busy));
      const at = nowIso();
      this.stmt.insertOperation.run({ id: input.id, kind: input.kind, store: input.store ?? null, machine: input.machine ?? null, step: input.step, params: JSON.stringify(input.params), parent: input.parent ?? null, at });
      this.insertEvent({ kind: `operation.started`, store: input.store, machine: input.machine, epoch: input.epoch, op: input.id, reason: input.reason, data: { kind: input.kind, step: input.step, params: input.params } }, at);
      return this.getOperation(input.id)!;
    })();
  }

  getOperation(id: string): OperationRow | undefined {
    const raw = this.stmt.operation.get(id) as RawOperation | undefined;
    return raw && toOperation(raw);
  }

  runningOperations(): OperationRow[] {
    return (this.stmt.runningOperations.all() as RawOperation[]).map(toOperation);
  }

  childOperations(parent: string): OperationRow[] {
    return (this.stmt.childOperations.all(parent) as RawOperation[]).map(toOperation);
  }

  listOperations(filter: OperationFilter): OperationRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit };
    if (!filter.all) where.push("(state IN ('pending', 'running') OR parent IS NULL)");
    if (filter.store) {
      where.push('store = @store');
      params.store = filter.store;
    }
    if (filter.machine) {
      where.push('machine = @machine');
      params.machine = filter.machine;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const sql = `SELECT * FROM (SELECT * FROM operations ${clause} ORDER BY created_at DESC, id DESC LIMIT @limit) ORDER BY created_at, id`;
    return (this.db.prepare(sql).all(params) as RawOperation[]).map(toOperation);
  }

  /**
   * Moves an operation from one step to the next and records why, in one transaction — before the step's side
   * effect runs. Compare-and-set on the step: false when the operation was not at `from` any more.
   */
  advanceOperation(op: OperationRow, change: { to: string; state: OperationState; rule: string; reason: string; error?: string; result?: Record<string, unknown>; epoch?: number; slot?: string }): boolean {
    return this.db.transaction(() => {
      const at = nowIso();
      const result = { ...op.result, ...(change.result ?? {}) };
      const changed = this.stmt.advanceOperation.run({ id: op.id, from: op.step, to: change.to, state: change.state, at, error: change.error ?? op.error, result: JSON.stringify(result) }).changes;
      if (changed !== 1) return false;
      this.insertEvent(
        { kind: change.state === 'running' ? 'operation.step' : `operation.${change.state}`, store: op.store ?? undefined, machine: op.machine ?? undefined, slot: change.slot, epoch: change.epoch, op: op.id, reason: change.reason, data: { rule: change.rule, from: op.step, to: change.to, ...(change.error ? { error: change.error } : {}) } },
        at,
      );
      return true;
    })();
  }

  mergeOperationResult(id: string, patch: Record<string, unknown>): void {
    this.db.transaction(() => {
      const op = this.getOperation(id);
      if (op) this.stmt.setOperationResult.run(JSON.stringify({ ...op.result, ...patch }), nowIso(), id);
    })();
  }

  requestCancel(id: string, reason: string): boolean {
    return this.db.transaction(() => {
      const op = this.getOperation(id);
      if (!op || this.stmt.requestCancel.run(nowIso(), id).changes !== 1) return false;
      this.insertEvent({ kind: 'operation.cancel-requested', store: op.store ?? undefined, machine: op.machine ?? undefined, op: id, reason });
      return true;
    })();
  }

  /** The steps an operation took, from its events. */
  operationEvents(op: string): EventRow[] {
    return this.db.prepare("SELECT * FROM events WHERE op = ? AND kind LIKE 'operation.%' ORDER BY id").all(op) as EventRow[];
  }

  listEvents(filter: EventFilter): EventRow[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit };
    if (filter.since) {
      where.push('at >= @since');
      params.since = filter.since;
    }
    if (filter.afterId) {
      where.push('id > @afterId');
      params.afterId = filter.afterId;
    }
    if (filter.store) {
      where.push('store = @store');
      params.store = filter.store;
    }
    if (filter.machine) {
      where.push('machine = @machine');
      params.machine = filter.machine;
    }
    const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
    // The newest `limit` events, returned oldest first.
    const sql = `SELECT * FROM (SELECT * FROM events ${clause} ORDER BY id DESC LIMIT @limit) ORDER BY id`;
    return this.db.prepare(sql).all(params) as EventRow[];
  }
}
