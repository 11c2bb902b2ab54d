// The rows of the coordinator database as the rest of the code sees them, and what callers hand to storage. No
// database import here: pure code (rules, views, the planner's adapter) imports this module alone, whatever backend
// holds the rows (storage.ts says how they are read and written).
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
  /** Addresses new slots on it may take (the cluster file's slot_ips: addresses and IPv4 ranges). */
  slotIps: string[];
}

export interface StoreRow {
  name: string;
  serviceIp: string;
  masterSlot: string;
  replicaSlot: string;
  epoch: number;
  /** What its slots are expected to grow by (the cluster file's expected_growth; 0: not stated). */
  growthBytes?: number;
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
  /**
   * Since when the slot's Cyrus may have made changes it could not write to its sync log (ISO; '' when none): a
   * failover now puts every mailbox of the slot at risk. Absent in rows stored before it existed.
   */
  unloggedSince?: string;
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
  /** The operation that keeps this slot stopped (a switchover's old master), or ''. */
  opHold: string;
  syncConfirmedEpoch: number;
  /** The failover that keeps this returning old master stopped until its unreplicated changes are recovered, or ''. */
  recoveryHold: string;
  /** What the agent moved aside when the slot came back as replica (reported). */
  quarantine: QuarantineRow | undefined;
  /** The requests its desired state carries now (one per kind at most), each run once per id by its agent. */
  requests: SlotRequests;
  /** The last result its agent reported of each kind (kept after the request is withdrawn). */
  results: SlotResults;
  /** The recovery whose temporary sync_server this (new master) slot has open, as its agent reported, or ''. */
  recoverListening: string;
  /** On a new replica: the re-replication that has not yet verified it holds everything (it must not be promoted). */
  seeding: string;
  /** The cleanup (cyr_expire) scheduling: since when one runs, who asked ('' the schedule), when it is due next. */
  cleanupStartedAt: string;
  cleanupRequested: string;
  cleanupNextAt: string;
  /** Its partitions, as the agent last measured them. */
  partitions: PartitionRow[];
}

/**
 * What the cleanup scheduler reads of every slot, every check (a narrow row: it runs twice a second), with the id of
 * the cleanup request the slot carries ('' none).
 */
export type CleanupSlotRow = Pick<SlotRow, 'name' | 'store' | 'machine' | 'dataPath' | 'metaPath' | 'observedState' | 'cleanupStartedAt' | 'cleanupRequested' | 'cleanupNextAt' | 'partitions'> & { cleanupOp: string };

/**
 * The kinds of request a slot's desired state can carry. Each is run once per id (the operation that asked) by the
 * slot's agent, which reports its result under the same kind.
 */
export const SLOT_REQUEST_KINDS = ['replay', 'check', 'recover-listen', 'recover-push', 'seed', 'cleanup'] as const;
export type SlotRequestKind = (typeof SLOT_REQUEST_KINDS)[number];

/** A request that asks for nothing beyond its id. */
type NoParams = Record<never, never>;

/** What each kind asks for beyond its id. */
export interface SlotRequestParams {
  /** Replay a stopped slot's leftover sync logs to its replica. */
  replay: NoParams;
  /** Summarize these mailboxes (internal names; "*" every mailbox of the slot). */
  check: { mailboxes: string[] };
  /** On a new master: open a temporary sync_server on the slot IP for a recovery (held while asked). */
  'recover-listen': NoParams;
  /** On a stopped returning old master: push these mailboxes to the slot `targetSlot`, verify, report. */
  'recover-push': { targetSlot: string; mailboxes: string[] };
  /** On a master: the full initial sync to its new, empty replica (fullSpeed: not paced by the agent's --seed-rate-limit). */
  seed: { fullSpeed?: boolean };
  /** Run cyr_expire (the retentions come from the cluster's settings when the desired state is built). */
  cleanup: NoParams;
}

export type SlotRequest<K extends SlotRequestKind = SlotRequestKind> = { [P in K]: { kind: P; id: string } & SlotRequestParams[P] }[K];
export type SlotRequests = { [K in SlotRequestKind]?: SlotRequest<K> };

/** What the agent reports of each kind that has a result (a temporary sync_server is reported as the slot's state). */
export interface SlotResultRows {
  replay: ReplayResultRow;
  check: MailboxCheckRow;
  'recover-push': RecoverResultRow;
  seed: SeedResultRow;
  'seed-progress': SeedProgressRow;
  cleanup: CleanupResultRow;
}
export type SlotResults = { [K in keyof SlotResultRows]?: SlotResultRows[K] };

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
  /** The slot's own files there (bytes, files and directories); absent from agents before this was measured. */
  usedBytes?: number;
  usedInodes?: number;
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

/** A running seed: done of total (users, mailboxes, messages, bytes), as the master's agent last reported it. */
export interface SeedProgressRow {
  op: string;
  usersDone: number;
  users: number;
  mailboxesDone: number;
  mailboxes: number;
  messagesDone: number;
  messages: number;
  bytesDone: number;
  bytes: number;
  startedAt: string;
  updatedAt: string;
}

/** Where a slot is: its store, machine, address and partitions. */
export type SlotPlace = Pick<SlotRow, 'name' | 'store' | 'machine' | 'ip' | 'dataPath' | 'metaPath'>;

/** A slot replaced by a re-replication (its files stay on its machine). */
export interface RetiredSlotRow extends SlotPlace {
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

export type OperationKind = 'switchover' | 'drain' | 'failover' | 'recover' | 'rebalance' | 'rereplicate' | 'move-replica' | 'machine-add' | 'evacuate' | 'fanout';
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
  /** Why it waits at its step, in one sentence ('' when a row just fired or it ended). */
  waiting: string;
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
export interface PlacedSlotRow extends SlotPlace {
  serviceIp: string;
  masterSlot: string;
  epoch: number;
  peerSlot: string | null;
  peerIp: string | null;
  peerMachine: string | null;
  peerAddress: string | null;
  adminStopped: number;
  startGeneration: number;
  opHold: string;
  recoveryHold: string;
  /** The requests it carries (id non-empty), with, for a recovery push, its target slot's address and machine. */
  requests: SlotRequests;
  recoverTargetIp: string | null;
  recoverTargetMachine: string | null;
  /** On a master whose replica is being moved: the new replica slot's IP (its second sync log channel). */
  moveTargetIp: string | null;
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
  /** Who caused it (the caller certificate's name); by default the actor of the call being served, if any. */
  actor?: string | undefined;
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
  actor: string | null;
}

export interface EventFilter {
  since?: string | undefined;
  afterId?: number | undefined;
  store?: string | undefined;
  machine?: string | undefined;
  /** Events this actor caused, and every event of the operations its calls started. */
  who?: string | undefined;
  limit: number;
  /** The oldest `limit` that match rather than the newest (a reader going through them in order). */
  oldestFirst?: boolean | undefined;
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
  syncConfirmedEpoch: number;
  quarantine: QuarantineRow | undefined;
  recoverListening: string;
  /** The results it carries (each replaces the stored one of its kind; a kind not sent keeps what is stored). */
  results: SlotResults;
  partitions: PartitionRow[] | undefined;
}

/** A new running operation (operations.create). */
export interface NewOperation {
  id: string;
  kind: OperationKind;
  store?: string;
  machine?: string;
  parent?: string;
  step: string;
  params: Record<string, unknown>;
  reason: string;
  epoch?: number;
}

/** An operation's move to its next step (operations.advance): the rule that fired and why. */
export interface OperationStep {
  to: string;
  state: OperationState;
  rule: string;
  reason: string;
  error?: string;
  result?: Record<string, unknown>;
  epoch?: number;
  slot?: string;
}

/** What a failover may have left behind (atRisk.create): the old master's last reported backlog. */
export type NewAtRisk = Pick<AtRiskRow, 'store' | 'slot' | 'machine' | 'op' | 'epoch' | 'backlog'>;

export interface AtRiskChange {
  state: AtRiskState;
  mailboxes?: string[];
  result?: Record<string, unknown>;
  reason: string;
  op?: string;
}

/** A store's replica slot replaced by a new slot on `machine` (stores.replaceReplica). */
export interface ReplicaReplacement {
  store: string;
  machine: string;
  slot: string;
  dataPath: string;
  metaPath: string;
  expectEpoch: number;
  op: string;
  reason: string;
}

/** A replica being moved: the new slot, added beside the store's replica until the switch. */
export interface MovingReplica {
  store: string;
  machine: string;
  slot: string;
  ip: string;
  dataPath: string;
  metaPath: string;
  expectEpoch: number;
  op: string;
  reason: string;
}

export interface CleanupRunFilter {
  slot?: string;
  machine?: string;
  limit: number;
}

/** A machine as the cluster file declares it (cluster apply). */
export interface MachineInput extends Pick<MachineRow, 'name' | 'address' | 'slotCapacity' | 'rack'> {
  disks: readonly DiskRow[];
  slotIps?: readonly string[];
}

/** A store as the cluster file declares it, with its two slots (cluster apply). */
export interface StoreInput extends Pick<StoreRow, 'name' | 'serviceIp' | 'masterSlot' | 'replicaSlot' | 'growthBytes'> {
  slots: readonly SlotInput[];
}

export type SlotInput = Pick<SlotRow, 'name' | 'machine' | 'ip' | 'dataPath' | 'metaPath'>;

export const EMPTY_BACKLOG: BacklogRow = {
  files: 0,
  bytes: 0,
  mailboxes: 0,
  mailboxNames: [],
  oldestChangeAgeMs: 0,
  stalled: false,
  stallReason: '',
  unloggedSince: '',
};

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
