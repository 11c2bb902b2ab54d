import { describe, expect, it } from 'vitest';
import { heartbeatMac, rolesDigest } from '@slotctl/shared';
import { RelayRegistry, type RelayContext, type RelayedRenewal } from './relay.js';

const roles = rolesDigest([{ slot: 'm1-s1', role: 'MASTER', epoch: 3 }]);
const ctx = (over: Partial<RelayContext> = {}): RelayContext => ({
  relayer: 'm3',
  relayerConnected: true,
  relayerState: 'up',
  machineState: 'suspect',
  retired: false,
  partners: ['m2', 'm3'],
  desiredRolesDigest: () => roles,
  now: 10_000,
  leaseMs: 5000,
  ...over,
});

function setup() {
  const registry = new RelayRegistry();
  const key = registry.welcome('m1', 'inst-1', 1000);
  // sent 8,500 ms into the session: arrives (now 10,000) 500 ms after it left
  const renewal = (seq: number, over: Partial<RelayedRenewal> = {}): RelayedRenewal => {
    const h = { machine: 'm1', instanceId: 'inst-1', seq, rolesDigest: roles, fenced: false, sinceWelcomeMs: 8500, ...over };
    return { ...h, mac: heartbeatMac(key, h), ...over };
  };
  return { registry, key, renewal };
}

describe('RelayRegistry', () => {
  it('accepts a renewal signed by the welcomed instance, carried by a connected partner that is up', () => {
    const { registry, key, renewal } = setup();
    expect(registry.check(renewal(1), ctx())).toEqual({ ok: true, key });
  });

  it('refuses a replayed or older sequence number', () => {
    const { registry, renewal } = setup();
    expect(registry.check(renewal(5), ctx()).ok).toBe(true);
    expect(registry.check(renewal(5), ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('relayed already') });
    expect(registry.check(renewal(4), ctx()).ok).toBe(false);
  });

  it('refuses a forged or altered renewal', () => {
    const { registry, renewal } = setup();
    const forged = { ...renewal(1), mac: heartbeatMac('00'.repeat(32), { machine: 'm1', instanceId: 'inst-1', seq: 1, rolesDigest: roles, fenced: false, sinceWelcomeMs: 8500 }) };
    expect(registry.check(forged, ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('MAC') });
    const altered = { ...renewal(2), seq: 3 };
    expect(registry.check(altered, ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('MAC') });
    expect(registry.check({ ...renewal(4), mac: 'nope' }, ctx()).ok).toBe(false);
  });

  it('refuses a relayer that is not a connected partner that is up, or the machine itself', () => {
    const { registry, renewal } = setup();
    expect(registry.check(renewal(1), ctx({ relayerConnected: false })).ok).toBe(false);
    expect(registry.check(renewal(2), ctx({ relayerState: 'suspect' })).ok).toBe(false);
    expect(registry.check(renewal(3), ctx({ partners: ['m2'] }))).toMatchObject({ ok: false, problem: 'm3 shares no store with m1' });
    expect(registry.check(renewal(4), ctx({ relayer: 'm1' })).ok).toBe(false);
  });

  it('refuses a machine that is down, retired, unknown to the cluster, or not welcomed', () => {
    const { registry, renewal } = setup();
    expect(registry.check(renewal(1), ctx({ machineState: 'down' })).ok).toBe(false);
    expect(registry.check(renewal(2), ctx({ machineState: 'unknown' })).ok).toBe(false);
    expect(registry.check(renewal(3), ctx({ retired: true })).ok).toBe(false);
    expect(registry.check(renewal(4), ctx({ machineState: undefined })).ok).toBe(false);
    registry.forget('m1');
    expect(registry.check(renewal(5), ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('welcomed') });
  });

  it('refuses an instance other than the one welcomed last (the agent restarted: its old key is void)', () => {
    const { registry, renewal } = setup();
    registry.welcome('m1', 'inst-2', 2000);
    expect(registry.check(renewal(1), ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('welcomed') });
  });

  it('refuses a machine whose masters are fenced, and a renewal held back on the way for more than two leases', () => {
    const { registry, renewal } = setup();
    expect(registry.check(renewal(1, { fenced: true }), ctx())).toMatchObject({ ok: false, problem: expect.stringContaining('fenced') });
    // left 100 ms into the session, arrives 8.9 s later (now 10,000): with a 2 s lease, a partner held it back
    expect(registry.check(renewal(2, { sinceWelcomeMs: 100 }), ctx({ leaseMs: 2000 }))).toMatchObject({ ok: false, problem: 'the renewal arrived 8900 ms later than it left (held back on the way): not counted' });
    // 10 s late is allowed with a 5 s lease (a main thread that read the welcome late looks like lateness)
    expect(registry.check(renewal(3, { sinceWelcomeMs: 0 }), ctx({ now: 10_900 })).ok).toBe(true);
    expect(registry.check(renewal(4, { sinceWelcomeMs: 0 }), ctx({ now: 11_100 })).ok).toBe(false);
  });

  it('refuses while the machine runs other roles than the coordinator wants, and still counts the sequence number', () => {
    const { registry, renewal } = setup();
    const other = rolesDigest([{ slot: 'm1-s1', role: 'REPLICA', epoch: 4 }]);
    expect(registry.check(renewal(1), ctx({ desiredRolesDigest: () => other }))).toMatchObject({ ok: false, problem: expect.stringContaining('other roles') });
    expect(registry.check(renewal(1), ctx()).ok).toBe(false);
    expect(registry.check(renewal(2), ctx()).ok).toBe(true);
  });
});
