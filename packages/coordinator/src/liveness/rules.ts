// Pure: machine liveness as a transition table. One decision function over an immutable snapshot returns the rule
// that fires (or none) with a sentence explaining it. States cause no actions; transitions write events.
import { leaseTimings } from '@slotctl/shared';
import type { MachineState } from '../db/rows.js';

export interface LivenessConfig {
  heartbeatIntervalMs: number;
  leaseMs: number;
}

/**
 * A machine is declared down after its lease *plus* this margin: its agent gave up its lease a fifth of a lease
 * before the lease ended (agent side, lease/lease.ts), so by then its fence has certainly stopped its masters.
 */
export function deadMarginMs(c: LivenessConfig): number {
  return leaseTimings(c.leaseMs, c.heartbeatIntervalMs).deadMarginMs;
}

export interface LivenessSnapshot {
  state: MachineState;
  /** ms since the last heartbeat, or since the coordinator started watching if none has come yet. */
  silenceMs: number;
  /** A heartbeat has arrived since the coordinator started. */
  heard: boolean;
  /** An agent of this machine was ever heard (the database has a heartbeat of it, from before a restart too). */
  everHeard: boolean;
  /** What is left of a hold beyond the last heartbeat (ms beyond the lease; 0: none): see RESTART_HOLD_MS, startHoldMs. */
  holdMs?: number;
  /** What the hold was asked for. */
  holdWhy?: HoldReason;
}

export interface LivenessRule {
  name: string;
  from: readonly MachineState[];
  to: MachineState;
  when: (s: LivenessSnapshot, c: LivenessConfig) => boolean;
  reason: (s: LivenessSnapshot, c: LivenessConfig) => string;
  /** The condition in words, for the table in docs/ARCHITECTURE.md (npm run docs). */
  doc: string;
}

const suspectAfter = (c: LivenessConfig) => 2 * c.heartbeatIntervalMs;

/**
 * After a coordinator restart, agents come back on their reconnect backoff, which tops out at 5 s with ±20 % jitter
 * (packages/agent/src/coordinator/backoff.ts): a coordinator that took 4 s to listen on a busy host saw agents return up
 * to 8 s after it went away. Silence after a restart is counted from the restart plus this much, and nothing fails
 * over before it: machines returning one by one otherwise brought the number down to one, and the last one back, cut
 * off only by the restart, was failed over.
 */
export const AGENT_RECONNECT_MAX_MS = 6000;

/**
 * A newly elected leader among several coordinators (etcd backend) waits less: its process was listening all along,
 * and agents cycle through the coordinators every 250–500 ms while none leads, then follow the followers' hint to it
 * at once (packages/shared/src/coordinator-choice.ts). Safety does not rest on it: every lease the old leader renewed
 * ends a lease after its leadership, and silence is counted from this leader's start (ARCHITECTURE.md, HA).
 */
export const AGENT_RECONNECT_TO_NEW_LEADER_MS = 3000;

/**
 * The restart hold: an agent stopping for a restart (an upgrade) leaves its slots serving on the lease its successor
 * inherits, which had to reconnect within the lease less a fifth (4 s) — a budget a loaded host's restart (loading
 * Node modules is 1–2 s of it) came within 0.5 s of, and once missed: the fence stopped every master. Its last
 * heartbeat says `restarting`, and the lease granted on it is longer by this much (never ending later than a lease
 * after this coordinator's leadership, the bound every renewal keeps), during which the machine is not declared down.
 * A coordinator that starts meanwhile knows nothing of it, and needs none: its first judgement of silence comes at
 * least its own grace (≥ this) plus a lease and a margin after it started.
 */
export const RESTART_HOLD_MS = AGENT_RECONNECT_TO_NEW_LEADER_MS;

/** Why a lease was granted longer than configured (a hold), as the heartbeat that asked for it said. */
export type HoldReason = 'restarting' | 'starting';

/** The default lease (the coordinator's --lease): what a shorter lease is lengthened towards while a machine starts slots (the start hold). */
export const DEFAULT_LEASE_MS = 5000;

/**
 * The start hold: while Cyrus slots start on a machine (cold processes, recovery, the host's busiest moments) its
 * heartbeats say `starting`, and a lease shorter than the default is granted as long as the default (at most the
 * restart hold more). Measured (BENCHMARKS.md, issue 21): at a 2 s lease, a cluster's start on a 2-core host held an
 * agent's threads up to ~1 s and its acknowledgements came 1–3 s late; fences fired in start-ups and killed starting
 * masters. A machine that dies while it starts slots is declared down that much later; in steady state nothing changes.
 */
export const startHoldMs = (leaseMs: number): number => Math.max(0, Math.min(RESTART_HOLD_MS, DEFAULT_LEASE_MS - leaseMs));

/** The hold a heartbeat asked for is granted (before the leadership's own bound, which the caller applies). */
export const holdMs = (leaseMs: number, why: HoldReason | undefined): number => (why === 'restarting' ? RESTART_HOLD_MS : why === 'starting' ? startHoldMs(leaseMs) : 0);

const HOLD_WORDS: Record<HoldReason, string> = { restarting: 'a restart hold', starting: 'a start hold' };
const HOLD_CAUSE: Record<HoldReason, string> = { restarting: 'its agent said it was restarting', starting: 'its agent said it was starting slots' };

export const LIVENESS_RULES: readonly LivenessRule[] = [
  {
    name: 'lease-expired',
    doc: 'silence ≥ lease (5 s) + margin (a fifth of the lease, at least 500 ms); after a heartbeat that said the agent is restarting, + the restart hold granted (≤ 3 s); one that said it is starting slots, + the start hold (up to the default lease, ≤ 3 s)',
    from: ['up', 'suspect'],
    to: 'down',
    when: (s, c) => s.silenceMs >= c.leaseMs + (s.holdMs ?? 0) + deadMarginMs(c),
    reason: (s, c) =>
      `lease of ${c.leaseMs} ms${s.holdMs ? ` (+ ${HOLD_WORDS[s.holdWhy ?? 'restarting']} of ${s.holdMs} ms: ${HOLD_CAUSE[s.holdWhy ?? 'restarting']})` : ''} (+ ${deadMarginMs(c)} ms margin) expired: no heartbeat for ${s.silenceMs} ms`,
  },
  {
    name: 'never-heard',
    doc: 'an agent of it was heard once (before a restart), none since the coordinator started, silence ≥ lease + margin; a machine whose agent never connected stays unknown',
    from: ['unknown'],
    to: 'down',
    // only a machine that was up once: one whose agent never connected stays unknown (a new machine, an agent not
    // installed yet, or a cluster starting on a host so busy its agents took seconds to start) — down would say it
    // had died, and nothing of it ever served
    when: (s, c) => !s.heard && s.everHeard && s.silenceMs >= c.leaseMs + deadMarginMs(c),
    reason: (s) => `no agent has connected for ${s.silenceMs} ms since the coordinator started`,
  },
  {
    name: 'heartbeats-missed',
    doc: 'heard since the coordinator started, silence ≥ 2 heartbeat intervals (after a restart, machines not back yet stay up until the lease says down)',
    from: ['up'],
    to: 'suspect',
    // only a machine heard since this coordinator started: after a restart the coordinator, not the machines, was
    // away; a thousand machines turned suspect two seconds in (and up again as they reconnected), two thousand
    // transactions and events in the middle of the reconnect storm. One not back within the lease still goes down.
    when: (s, c) => s.heard && s.silenceMs >= suspectAfter(c),
    reason: (s, c) => `no heartbeat for ${s.silenceMs} ms (${suspectAfter(c)} ms = 2 intervals)`,
  },
  {
    name: 'heartbeat',
    doc: 'a heartbeat within 2 intervals',
    from: ['unknown', 'suspect', 'down'],
    to: 'up',
    when: (s, c) => s.heard && s.silenceMs < suspectAfter(c),
    reason: (s) => (s.state === 'down' ? 'the agent is heard again after the machine was down' : 'the agent is heard (hello or heartbeat)'),
  },
];

export interface LivenessDecision {
  rule: string;
  to: MachineState;
  reason: string;
}

export function decideLiveness(snapshot: LivenessSnapshot, config: LivenessConfig): LivenessDecision | undefined {
  for (const rule of LIVENESS_RULES) {
    if (rule.from.includes(snapshot.state) && rule.when(snapshot, config)) {
      return { rule: rule.name, to: rule.to, reason: rule.reason(snapshot, config) };
    }
  }
  return undefined;
}
