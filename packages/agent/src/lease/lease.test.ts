import { describe, expect, it } from 'vitest';
import { Lease, RENEWAL_SEQ_BASE, leaseMargin, monotonicMs, renewalDue } from './lease.js';

describe('the agent lease', () => {
  it('runs from the send time of the acknowledged heartbeat, minus the margin', () => {
    const lease = new Lease();
    lease.sentAt(1, 10_000);
    expect(lease.held(10_000)).toBe(false); // nothing acknowledged yet
    expect(lease.acked(1, 5000, 1000)).toBe(14_000); // acked at 12,500: not 12,500 + 5,000
    expect(lease.held(13_999)).toBe(true);
    expect(lease.held(14_000)).toBe(false);
  });

  it('is never moved back by a late acknowledgement of an older heartbeat', () => {
    const lease = new Lease();
    lease.sentAt(1, 0);
    lease.sentAt(2, 1000);
    expect(lease.acked(2, 5000, 1000)).toBe(5000);
    expect(lease.acked(1, 5000, 1000)).toBe(5000); // 1 was dropped with the ack of 2
  });

  it("keeps the session's heartbeats in flight when a renewal or relay of the lease thread is acknowledged", () => {
    const lease = new Lease();
    lease.sentAt(7, 1000); // the stream's, waiting for its acknowledgement
    lease.sentAt(RENEWAL_SEQ_BASE + 1, 1500); // a relay through a partner
    expect(lease.acked(RENEWAL_SEQ_BASE + 1, 5000, 1000)).toBe(5500);
    // the stream's acknowledgement still counts (before, the relay's had made it unknown)
    lease.sentAt(8, 2000);
    expect(lease.acked(8, 5000, 1000)).toBe(6000);
    expect(lease.sentTime(7)).toBeUndefined(); // and forgets the older ones of its own kind
  });

  it('ignores an acknowledgement of a heartbeat it never sent and forgets everything on reset', () => {
    const lease = new Lease();
    expect(lease.acked(7, 5000, 500)).toBeUndefined();
    lease.sentAt(1, 0);
    lease.acked(1, 5000, 500);
    lease.reset();
    expect(lease.held(1)).toBe(false);
  });

  it('gives up at least 250 ms and a fifth of the lease early, on a clock that only moves forward', () => {
    expect(leaseMargin(5000)).toBe(1000);
    expect(leaseMargin(2000)).toBe(400);
    expect(leaseMargin(1000)).toBe(250);
    const a = monotonicMs();
    const b = monotonicMs();
    expect(b).toBeGreaterThanOrEqual(a);
  });
});

describe('renewal over a fresh connection', () => {
  const base = { heartbeatIntervalMs: 1000, leaseMs: 5000 };
  // deadline = send time of the newest acknowledged heartbeat + 5000 − 1000
  it('is not due while acknowledgements come in time', () => {
    expect(renewalDue({ ...base, now: 10_900, lastAckAt: 10_010, deadline: 10_000 + 4000 })).toBe(false);
    expect(renewalDue({ ...base, now: 10_000, lastAckAt: 9_990, deadline: undefined })).toBe(false);
  });
  it('is due when acknowledgements are overdue', () => {
    expect(renewalDue({ ...base, now: 11_600, lastAckAt: 10_000, deadline: 10_000 + 4000 })).toBe(true);
  });
  it('is due when they arrive, but each for a heartbeat sent more than two intervals before', () => {
    // the case seen: an ack just now for a heartbeat sent 1,964 ms ago left 2,036 ms
    expect(renewalDue({ ...base, now: 41_750, lastAckAt: 41_750, deadline: 39_786 + 4000 })).toBe(false);
    expect(renewalDue({ ...base, now: 41_800, lastAckAt: 41_750, deadline: 39_786 + 4000 })).toBe(true);
  });
});
