// Pure: the agent's view of its lease. The coordinator acknowledges a heartbeat only after committing it and counts
// a machine's silence from the last heartbeat it *received*; the agent counts its lease from the moment it *sent*
// the acknowledged heartbeat, minus a margin, so it always believes its lease ended before the coordinator may act
// on it. Times are milliseconds of CLOCK_MONOTONIC (`monotonicMs`), shared by every process of the host, so a fence
// process can hold the same deadline.

import { leaseTimings } from '@slotctl/shared/base';

export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

/**
 * The lease thread's own renewals (fresh connections, relays) count from here; the session's heartbeats from 1. An
 * acknowledgement forgets the older sends of its own kind only: a renewal's must not make the stream's in flight
 * unknown (their acknowledgements would then renew nothing).
 */
export const RENEWAL_SEQ_BASE = 2 ** 40;

export class Lease {
  private readonly sent = new Map<number, number>();
  private until: number | undefined;

  /** A heartbeat left with this sequence number. */
  sentAt(seq: number, now: number): void {
    this.sent.set(seq, now);
    if (this.sent.size > 256) this.sent.delete(this.sent.keys().next().value!);
  }

  /** When heartbeat `seq` left (undefined once forgotten). */
  sentTime(seq: number): number | undefined {
    return this.sent.get(seq);
  }

  /** Its acknowledgement arrived: the lease runs from the send time, less the margin. Returns the deadline (never moved back). */
  acked(seq: number, leaseMs: number, marginMs: number): number | undefined {
    const sent = this.sent.get(seq);
    if (sent === undefined) return this.until; // an ack for a heartbeat we did not send, or already forgotten
    const renewal = seq >= RENEWAL_SEQ_BASE;
    for (const k of [...this.sent.keys()]) if (k <= seq && k >= RENEWAL_SEQ_BASE === renewal) this.sent.delete(k);
    const deadline = sent + leaseMs - marginMs;
    if (this.until === undefined || deadline > this.until) this.until = deadline;
    return this.until;
  }

  get deadline(): number | undefined {
    return this.until;
  }

  held(now: number): boolean {
    return this.until !== undefined && now < this.until;
  }

  /** A new session: nothing acknowledged before it counts. */
  reset(): void {
    this.sent.clear();
    this.until = undefined;
  }
}

/** The margin by which the agent gives up before the coordinator: a fifth of the lease, at least 250 ms (lease-timing.ts). */
export function leaseMargin(leaseMs: number): number {
  return leaseTimings(leaseMs, 0).agentMarginMs;
}

export interface RenewalView {
  now: number;
  lastAckAt: number;
  heartbeatIntervalMs: number;
  leaseMs: number;
  /** The deadline the lease runs to (undefined: none yet). */
  deadline: number | undefined;
}

/**
 * Whether the lease thread should renew over a fresh connection now: acknowledgements are overdue (1.5 intervals
 * without one), or they arrive but late — the newest acknowledged heartbeat left more than two intervals ago, so the
 * deadline (its send time + lease − margin) is nearer than it ever is when acks come in time. Each late ack extends
 * the lease only a little: acks 2 s late on a saturated host left 2 s, and a renewal started only once acks were
 * overdue again came back after the fence had read the old deadline (seen: fenced by 89 ms while 40 slots started
 * beside two busy loops).
 */
/** No acknowledgement for 1.5 intervals: what starts renewals over fresh connections and relays alike. */
export const acksOverdue = (now: number, lastAckAt: number, heartbeatIntervalMs: number): boolean => now - lastAckAt > 1.5 * heartbeatIntervalMs;

export function renewalDue(v: RenewalView): boolean {
  if (acksOverdue(v.now, v.lastAckAt, v.heartbeatIntervalMs)) return true;
  if (v.deadline === undefined) return false;
  const newestAckedSentAt = v.deadline - (v.leaseMs - leaseMargin(v.leaseMs));
  return v.now - newestAckedSentAt > 2 * v.heartbeatIntervalMs;
}
