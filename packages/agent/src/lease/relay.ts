// Pure: when and through whom the lease thread relays a renewal (Peer.Relay → Agent.Relay). A machine cut from the
// coordinator alone keeps its lease through a partner that still reaches it; one heard by nobody loses it on time
// (a relayed renewal counts from when it left, like any other, so a slow or delaying partner only shortens it).
import { rolesDigest } from '@slotctl/shared';
import type { AppliedSlots } from '../state/apply-plan.js';
import { acksOverdue } from './lease.js';

/** The digest of the roles applied here, as the coordinator computes it from what it wants (Agent.Relay). */
export function appliedRolesDigest(applied: AppliedSlots): string {
  return rolesDigest(Object.entries(applied).map(([slot, a]) => ({ slot, role: a.role, epoch: a.epoch })));
}

export interface RelayCandidate {
  machine: string;
  /** host:port of its Peer service */
  address: string;
  /** Its last Confirm answer said it hears the coordinator. */
  reaches: boolean;
}

export interface RelayView {
  now: number;
  /** The last acknowledgement of any kind (stream, renewal, relay). */
  lastAckAt: number;
  heartbeatIntervalMs: number;
  /** When the last relayed renewal left, and how many are still waiting for an answer. */
  lastRelayAt: number;
  inFlight: number;
  /** How often one may leave while acknowledgements are overdue. */
  everyMs: number;
}

/** At most this many relayed renewals wait for answers at once (each through a different partner). */
export const MAX_RELAYS_IN_FLIGHT = 2;

/**
 * Whether to relay a renewal now: acknowledgements are overdue (the same 1.5 intervals that start renewals over fresh
 * connections: both go at once, whichever gets through renews), none left within `everyMs`, and not too many wait.
 */
export function relayDue(v: RelayView): boolean {
  if (!acksOverdue(v.now, v.lastAckAt, v.heartbeatIntervalMs)) return false;
  if (v.inFlight >= MAX_RELAYS_IN_FLIGHT) return false;
  return v.now - v.lastRelayAt >= v.everyMs;
}

/**
 * The partner to relay through next: the one that relayed last while it still works (its connection is warm, and
 * the coordinator shows one stable relayer); otherwise a partner that says it reaches the coordinator and has not
 * just failed, then any that has not just failed, then any. `busy`: partners with a relay in flight, skipped.
 */
export function nextRelayer(candidates: readonly RelayCandidate[], preferred: string | undefined, failed: ReadonlySet<string>, busy: ReadonlySet<string> = new Set()): RelayCandidate | undefined {
  const free = candidates.filter((c) => !busy.has(c.machine));
  const kept = free.find((c) => c.machine === preferred && !failed.has(c.machine));
  if (kept) return kept;
  return free.find((c) => c.reaches && !failed.has(c.machine)) ?? free.find((c) => !failed.has(c.machine)) ?? free[0];
}
