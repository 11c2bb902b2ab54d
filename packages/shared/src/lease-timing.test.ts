import { describe, expect, it } from 'vitest';
import { leaseTimingProblem, leaseTimings } from './lease-timing.js';

describe('leaseTimings', () => {
  it('keeps the timings of the 5 s lease and 1 s interval', () => {
    expect(leaseTimings(5000, 1000)).toEqual({ leaseMs: 5000, heartbeatIntervalMs: 1000, agentMarginMs: 1000, deadMarginMs: 1000, renewEveryMs: 500, renewTimeoutMs: 1500, keptRenewTimeoutMs: 4000, peerIntervalMs: 1000, failsafeMarginMs: 1000 });
  });

  it('a 2 s lease at 250 ms: promotion ≥ 900 ms after the old masters stopped, 1 s blips survive', () => {
    const t = leaseTimings(2000, 250);
    expect(t.agentMarginMs + t.deadMarginMs).toBeGreaterThanOrEqual(750);
    // blip + interval + one renewal period + a 100 ms handshake inside what the agent believes it holds
    expect(1000 + t.heartbeatIntervalMs + t.renewEveryMs + 100).toBeLessThan(t.leaseMs - t.agentMarginMs);
    expect(t.renewTimeoutMs).toBeGreaterThanOrEqual(500);
    // the kept connection's renewal waits as long as its answer can still renew: until a lease less the margin
    expect(t.keptRenewTimeoutMs).toBe(t.leaseMs - t.agentMarginMs);
    expect(t.peerIntervalMs).toBe(250);
  });

  it('never lets the margins fall below what the fence needs', () => {
    for (const [l, i] of [[1000, 100], [1500, 250], [30_000, 5000]] as const) {
      const t = leaseTimings(l, i);
      expect(t.agentMarginMs + t.deadMarginMs).toBeGreaterThanOrEqual(750);
      expect(t.failsafeMarginMs).toBeGreaterThanOrEqual(500);
      expect(t.renewEveryMs).toBeGreaterThanOrEqual(100);
    }
  });

  it('refuses a lease that leaves less than two intervals, or tiny values', () => {
    expect(leaseTimingProblem(5000, 1000)).toBeUndefined();
    expect(leaseTimingProblem(2000, 250)).toBeUndefined();
    expect(leaseTimingProblem(2000, 1000)).toMatch(/less than two heartbeat intervals/);
    expect(leaseTimingProblem(800, 100)).toMatch(/below 1 s/);
    expect(leaseTimingProblem(5000, 50)).toMatch(/below 100 ms/);
  });
});
