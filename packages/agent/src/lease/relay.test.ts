import { describe, expect, it } from 'vitest';
import { nextRelayer, relayDue, type RelayCandidate } from './relay.js';

const view = { now: 10_000, lastAckAt: 8_000, heartbeatIntervalMs: 1000, lastRelayAt: 0, inFlight: 0, everyMs: 500 };

describe('relayDue', () => {
  it('relays once acknowledgements are 1.5 intervals overdue, not before', () => {
    expect(relayDue({ ...view, lastAckAt: 8_600 })).toBe(false);
    expect(relayDue({ ...view, lastAckAt: 8_400 })).toBe(true);
  });
  it('paces relays and bounds those in flight', () => {
    expect(relayDue({ ...view, lastRelayAt: 9_700 })).toBe(false);
    expect(relayDue({ ...view, lastRelayAt: 9_500 })).toBe(true);
    expect(relayDue({ ...view, inFlight: 2 })).toBe(false);
  });
});

describe('nextRelayer', () => {
  const c: RelayCandidate[] = [
    { machine: 'm2', address: '10.0.0.2:7002', reaches: false },
    { machine: 'm3', address: '10.0.0.3:7002', reaches: true },
    { machine: 'm4', address: '10.0.0.4:7002', reaches: true },
  ];
  it('keeps the partner that relayed last while it works', () => {
    expect(nextRelayer(c, 'm4', new Set())?.machine).toBe('m4');
    expect(nextRelayer(c, 'm2', new Set())?.machine).toBe('m2');
  });
  it('prefers a partner that reaches the coordinator and has not just failed', () => {
    expect(nextRelayer(c, undefined, new Set())?.machine).toBe('m3');
    expect(nextRelayer(c, 'm4', new Set(['m4']))?.machine).toBe('m3');
    expect(nextRelayer(c, undefined, new Set(['m3', 'm4']))?.machine).toBe('m2');
  });
  it('tries again a failed one when all failed, and skips the busy', () => {
    expect(nextRelayer(c, undefined, new Set(['m2', 'm3', 'm4']))?.machine).toBe('m2');
    expect(nextRelayer(c, undefined, new Set(), new Set(['m3']))?.machine).toBe('m4');
    expect(nextRelayer([], undefined, new Set())).toBeUndefined();
  });
});
