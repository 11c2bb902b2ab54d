// The rows as SQLite holds them (snake_case columns, JSON text) and their mapping to the rows the coordinator uses.
import {
  EMPTY_BACKLOG,
  type AtRiskRow,
  type BacklogRow,
  type CleanupRunRow,
  type CleanupSlotRow,
  type DiskRow,
  type MachineRow,
  type MachineState,
  type OperationRow,
  type PartitionRow,
  type QuarantineRow,
  type RetiredSlotRow,
  type SlotRequestKind,
  type SlotRequests,
  type SlotResults,
  type SlotRow,
  type StoreRow,
} from '../rows.js';

/** A result column: '{}' until the agent reported one. */
export function reported<T>(text: string): T | undefined {
  return text === '{}' ? undefined : (JSON.parse(text) as T);
}

export interface RawMachine {
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
  slot_ips: string;
}

export function toMachine(raw: RawMachine): MachineRow {
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
    slotIps: JSON.parse(raw.slot_ips ?? '[]') as string[],
  };
}

export interface RawStore {
  name: string;
  service_ip: string;
  master_slot: string;
  replica_slot: string;
  epoch: number;
  growth_bytes?: number;
}

export function toStore(raw: RawStore): StoreRow {
  return {
    name: raw.name,
    serviceIp: raw.service_ip,
    masterSlot: raw.master_slot,
    replicaSlot: raw.replica_slot,
    epoch: raw.epoch,
    growthBytes: raw.growth_bytes ?? 0,
  };
}

export interface RawSlot {
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
  op_hold: string;
  sync_confirmed_epoch: number;
  recovery_hold: string;
  quarantine: string;
  recover_listening: string;
  seeding: string;
  cleanup_started_at: string;
  cleanup_requested: string;
  cleanup_next_at: string;
  /** Its slot_requests rows, as SLOT_REQUESTS aggregates them. */
  requests: string;
  partitions: string;
}

export function toSlot(raw: RawSlot): SlotRow {
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
    opHold: raw.op_hold,
    syncConfirmedEpoch: raw.sync_confirmed_epoch,
    recoveryHold: raw.recovery_hold,
    quarantine: reported<QuarantineRow>(raw.quarantine),
    ...toRequests(raw.requests),
    recoverListening: raw.recover_listening,
    seeding: raw.seeding,
    cleanupStartedAt: raw.cleanup_started_at,
    cleanupRequested: raw.cleanup_requested,
    cleanupNextAt: raw.cleanup_next_at,
    partitions: JSON.parse(raw.partitions) as PartitionRow[],
  };
}

/** A slot's slot_requests rows as one JSON array (a correlated subquery on the table's key: one lookup per slot). */
export const SLOT_REQUESTS = (slot: string, where = '') =>
  `(SELECT json_group_array(json_object('kind', q.kind, 'id', q.id, 'params', json(q.params), 'result', json(q.result))) FROM slot_requests q WHERE q.slot = ${slot}${where})`;

interface RawRequest {
  kind: SlotRequestKind;
  id: string;
  params: Record<string, unknown>;
  result: Record<string, unknown>;
}

/** The open requests (id set) and the stored results of a slot, from its SLOT_REQUESTS array. */
export function toRequests(json: string | null | undefined): { requests: SlotRequests; results: SlotResults } {
  const requests: Record<string, unknown> = {};
  const results: Record<string, unknown> = {};
  for (const r of JSON.parse(json || '[]') as RawRequest[]) {
    if (r.id) requests[r.kind] = { ...r.params, kind: r.kind, id: r.id };
    if (Object.keys(r.result).length > 0) results[r.kind] = r.result;
  }
  return { requests: requests as SlotRequests, results: results as SlotResults };
}

export interface RawOperation extends Pick<OperationRow, 'id' | 'kind' | 'store' | 'machine' | 'state' | 'step' | 'error' | 'parent'> {
  step_since: string;
  params: string;
  result: string;
  cancel_requested: number;
  created_at: string;
  updated_at: string;
  waiting: string;
}

export function toOperation(raw: RawOperation): OperationRow {
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
    waiting: raw.waiting,
  };
}

export interface RawAtRisk extends Pick<AtRiskRow, 'id' | 'store' | 'slot' | 'machine' | 'op' | 'epoch' | 'state'> {
  created_at: string;
  backlog: string;
  mailboxes: string;
  result: string;
  closed_at: string | null;
}

export function toAtRisk(raw: RawAtRisk): AtRiskRow {
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

export interface RawCleanupSlot {
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

export function toCleanupSlot(r: RawCleanupSlot): CleanupSlotRow {
  return {
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
  };
}

export interface RawCleanupRun {
  slot: string; store: string; machine: string; op: string; requested_by: string; started_at: string; finished_at: string; ok: number; exit_code: number; ms: number; freed_bytes: number; error: string; tail: string;
}

export function toCleanupRun(r: RawCleanupRun): CleanupRunRow {
  return { slot: r.slot, store: r.store, machine: r.machine, op: r.op, requestedBy: r.requested_by, startedAt: r.started_at, finishedAt: r.finished_at, ok: r.ok !== 0, exitCode: r.exit_code, ms: r.ms, freedBytes: r.freed_bytes, error: r.error, tail: JSON.parse(r.tail) as string[] };
}

export interface RawRetiredSlot {
  name: string; store: string; machine: string; ip: string; data_path: string; meta_path: string; replaced_by: string; op: string; retired_at: string;
}

export function toRetiredSlot(r: RawRetiredSlot): RetiredSlotRow {
  return { name: r.name, store: r.store, machine: r.machine, ip: r.ip, dataPath: r.data_path, metaPath: r.meta_path, replacedBy: r.replaced_by, op: r.op, retiredAt: r.retired_at };
}
