// One kind of request a slot's desired state can carry (replay, check, recover-push, seed, cleanup) — or, for confirm,
// a duty its role implies — as a handler the RequestRunner runs once per id. Each handler is a file of its own, listed
// once in handlers.ts; a new kind of request is one more file there (and its message in the contract).
import type { DesiredSlot__Output, Logger, SlotRequest__Output, SlotResult } from '@slotctl/shared';
import type { MailboxGuidList } from '../cyrus/mailboxes.js';
import type { SlotRuntime, SlotSupervisor } from '../slot/supervisor.js';
import type { PartitionReport } from '@slotctl/shared';
import type { SlotCounters } from '../observe/metrics.js';

/** The contract's name of a request kind (the SlotRequest oneof). */
export type RequestKind = NonNullable<SlotRequest__Output['kind']>;

/** The lifecycles in which no cyrmaster of the slot runs (a replay or a recovery push may run only then). */
export const SLOT_DOWN: readonly string[] = ['stopped', 'configured', 'failed'];

/** A slot's request of `kind` in its desired state, if it carries one. */
export function requestOf<K extends RequestKind>(d: DesiredSlot__Output | undefined, kind: K): (SlotRequest__Output & { [P in K]: NonNullable<SlotRequest__Output[P]> }) | undefined {
  return d?.requests.find((r) => r.kind === kind && r[kind]) as (SlotRequest__Output & { [P in K]: NonNullable<SlotRequest__Output[P]> }) | undefined;
}

/** What a handler may use of the machine beyond its slot. */
export interface RequestServices {
  runtime: Pick<SlotRuntime, 'ports' | 'auth' | 'vip'>;
  /** Recovery's verification: a new master's message GUIDs, asked of the agent of `machine`. */
  targetGuids: (machine: string, slot: string, mailboxes: string[]) => Promise<MailboxGuidList[]>;
  /** Recovery's last step after a clash: the new master's agent logs a user sync of these users. */
  targetUserSync: (machine: string, slot: string, users: string[]) => Promise<void>;
  /** The slot's sync directory changed (a replay consumed logs): its backlog is read again. */
  refreshBacklog: (slot: string) => Promise<void>;
  /** The slot's quarantine changed (a recovery marked it recovered): it is read again. */
  quarantineChanged: (s: SlotSupervisor, recovered: string[]) => Promise<void>;
  /** A master whose Cyrus could not write some changes to its sync log: logs a sync of everything (true: none left). */
  logUnlogged: (s: SlotSupervisor) => Promise<boolean>;
  /** Measures the slot's partitions now (and keeps the figures for its report). */
  measure: (s: SlotSupervisor) => Promise<PartitionReport[]>;
  /** Bytes a second a seed averages at most (0 or absent: none). */
  seedRateLimit?: number;
  /** Where cleanup runs are counted (/metrics); absent in tests that do not look. */
  metrics?: Pick<SlotCounters, 'cleanupRan'>;
}

/** One run: the slot, its desired state, the id it runs under and the request itself. */
export interface RequestJob {
  s: SlotSupervisor;
  d: DesiredSlot__Output;
  id: string;
  log: Logger;
  services: RequestServices;
  /** Something of the run worth reporting changed (its progress): the slot's report goes out again soon. */
  changed: () => void;
}

/** Every result names the id (operation) it was run under. */
export interface RequestResult {
  op: string;
}

export interface RequestHandler<R extends RequestResult = RequestResult> {
  /** Its name in logs and in the runner's bookkeeping. */
  readonly name: string;
  /** The id this slot's desired state asks it to run under now, if any. */
  requested(d: DesiredSlot__Output): string | undefined;
  /** Whether the slot is in a state to run it (if not, it is asked again with the next desired state). */
  mayRun(s: SlotSupervisor, d: DesiredSlot__Output): boolean;
  /** Runs it and says what came of it; undefined: nothing to record (it may run again under the same id). */
  run(job: RequestJob): Promise<R | undefined>;
  /** The result when run() threw (a bug, or a failure it did not foresee), if it is to be recorded. */
  failed?(id: string, error: string): R;
  /** apply() waits for it (what it does decides what comes next) or leaves it running in the background. */
  readonly waits: boolean;
  /** Its result as the slot's report carries it (none: reported another way). */
  asResult?(r: R): SlotResult;
  /** While it runs on `slot`: how far it got, as the report carries it. */
  progress?(slot: string): SlotResult | undefined;
}

/** Where a handler's results outlive the agent (replay: persisted before it is reported). */
export interface ResultStore<R extends RequestResult = RequestResult> {
  get(slot: string): R | undefined;
  save(slot: string, result: R): Promise<void>;
}
