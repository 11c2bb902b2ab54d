import { describe, expect, it } from 'vitest';
import { LEASE_HELD_RETRY_MS, reconnectDelay, sessionRetryDelay } from './backoff.js';

describe('session retry delay', () => {
  const mid = () => 0.5; // no jitter
  it('grows exponentially to its cap when no lease is held', () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((a) => sessionRetryDelay(a, false, mid))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('stays short while the lease still holds, jittered by ±20 %', () => {
    expect([0, 1, 2, 3, 10].map((a) => sessionRetryDelay(a, true, mid))).toEqual([250, LEASE_HELD_RETRY_MS, LEASE_HELD_RETRY_MS, LEASE_HELD_RETRY_MS, LEASE_HELD_RETRY_MS]);
    expect(sessionRetryDelay(10, true, () => 0)).toBe(Math.round(LEASE_HELD_RETRY_MS * 0.8));
    expect(sessionRetryDelay(10, true, () => 0.999999)).toBe(Math.round(LEASE_HELD_RETRY_MS * 1.2));
    expect(reconnectDelay(10, 250, 5000, () => 0)).toBe(4000);
  });
});
