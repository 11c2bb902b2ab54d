// The leadership's deadline is kept by a timer of its own: a keepalive whose stream never opens (etcd unreachable)
// must not keep a leader believing past `until`; and a keepalive that hangs (a hung member) must not hold the lease
// while another attempt could renew it. A fake etcd client (pure logic): elections against real etcd are
// in test/etcd-backend.test.ts and test/coordinator-ha.test.ts.
import type { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { EtcdKeys } from '../db/etcd/keys.js';
import { Leadership, leadershipMargin } from './leadership.js';

function fakeEtcd(keepAlive: () => Promise<unknown>): Etcd3 {
  return {
    kv: {
      range: async () => ({ kvs: [], header: { revision: '7' } }),
      txn: async () => ({ succeeded: true, header: { revision: '8' } }),
    },
    leaseClient: {
      leaseGrant: async () => ({ ID: '1', TTL: '2' }),
      leaseKeepAlive: keepAlive,
      leaseRevoke: async () => ({}),
    },
  } as unknown as Etcd3;
}

const log = createLogger('test', { level: 'silent' });
/** A keepalive stream of a hung member: it opens, nothing ever answers. */
const hanging = { on: () => undefined, write: () => true, end: () => undefined };
/** A keepalive stream that answers TTL 2 after `ms` (0: at once). */
const answering = (ms = 0) => ({ on: (event: string, fn: (res: unknown) => void) => event === 'data' && setTimeout(() => fn({ TTL: '2' }), ms), write: () => true, end: () => undefined });

describe('Leadership', () => {
  it('ends at its deadline when keepalives hang, and a late answer brings nothing back', async () => {
    let answerLate: ((stream: unknown) => void) | undefined;
    const leadership = new Leadership({ client: fakeEtcd(() => new Promise((resolve) => (answerLate ??= resolve))), keys: new EtcdKeys('/t'), me: { id: 'a', address: 'a:7400', since: '' }, ttlSeconds: 2, log });
    const started = performance.now();
    const lost = new Promise<{ why: string; at: number }>((resolve) => leadership.onLost((why) => resolve({ why, at: performance.now() })));
    expect(await leadership.campaign()).toBe(8);
    const until = leadership.until();
    expect(until).toBeGreaterThan(started);
    expect(until, 'the TTL less the margin, from when the lease was asked for').toBeLessThanOrEqual(performance.now() + 2000 - leadershipMargin(2000));
    const { why, at } = await lost;
    expect(why).toMatch(/did not renew/);
    expect(at, 'noticed at the deadline, not whenever the hung call returns').toBeGreaterThanOrEqual(until);
    expect(at - until, 'on time (a timer, give or take a busy host)').toBeLessThan(1000);
    expect(leadership.until()).toBe(0);
    // the hung keepalive finally answers with a fresh TTL: leadership stays lost
    answerLate?.(answering());
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(leadership.until()).toBe(0);
    await leadership.resign();
  }, 10_000);

  it('sends another keepalive while one hangs (a hung etcd member): the first answer keeps the lease', async () => {
    let calls = 0;
    // every other attempt goes to the hung member
    const leadership = new Leadership({ client: fakeEtcd(async () => (++calls % 2 === 1 ? hanging : answering())), keys: new EtcdKeys('/t'), me: { id: 'a', address: 'a:7400', since: '' }, ttlSeconds: 2, log });
    const lost: string[] = [];
    leadership.onLost((why) => lost.push(why));
    await leadership.campaign();
    await new Promise((resolve) => setTimeout(resolve, 3 * 2000));
    expect(lost, 'a hung keepalive held the lease until it ran out').toEqual([]);
    expect(leadership.until()).toBeGreaterThan(performance.now());
    expect(calls, 'attempts went to the hung member and to the other').toBeGreaterThan(4);
    await leadership.resign();
  }, 15_000);

  it('counts the lease from when the attempt that answered was sent, not a later one', async () => {
    const calledAt: number[] = [];
    let round = 0;
    // the first attempt answers after 300 ms (two more are sent meanwhile, 100 ms apart); every later one hangs
    const leadership = new Leadership({ client: fakeEtcd(async () => (calledAt.push(performance.now()), ++round === 1 ? answering(300) : hanging)), keys: new EtcdKeys('/t'), me: { id: 'a', address: 'a:7400', since: '' }, ttlSeconds: 2, log });
    leadership.onLost(() => undefined);
    await leadership.campaign();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(calledAt.length, 'more attempts sent while the first had not answered').toBeGreaterThanOrEqual(3);
    expect(leadership.until()).toBeGreaterThan(calledAt[0]! + 2000 - leadershipMargin(2000) - 50);
    expect(leadership.until(), 'from the first attempt, which answered').toBeLessThanOrEqual(calledAt[0]! + 2000 - leadershipMargin(2000));
    await leadership.resign();
  }, 10_000);
});
