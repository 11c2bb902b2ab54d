// Service IPs are reconciled, level-triggered: what an operator's stray `ip addr del` (or a NIC flap, or a fence
// racing an announcement) takes away from a master is bound again within a second, with an event; a store's address
// found on a machine that is not its master is released; and a master that cannot get its address back (someone
// else answers for it) is not reported serving. Real `ip` and `arping` in network namespaces, real mail through the
// service IP.
import { describe, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { clusterChecks, useCluster } from './cluster/checks.js';
import { NetnsCluster } from './cluster/netns.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('vip-reconcile');
const cluster = new NetnsCluster({ dir, id: 'i', machines: 3, slotsPerMachine: 2, storePrefix: 'i' });
const { stores, store } = clusterChecks(cluster, ['amy']);

interface EventJson {
  kind: string;
  slot: string;
  reason: string;
}

useCluster(cluster, dir, 'i');

const addressesOf = async (host: string) => (await cluster.exec(host, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout;
const has = async (host: string, ip: string) => (await addressesOf(host)).includes(` ${ip}/`);
const events = (kind: string) => cluster.slotctlJson<EventJson[]>(['events', '--limit', '1000']).then((list) => list.filter((e) => e.kind === kind));

/** Polls every 20 ms until `check` holds; returns the milliseconds it took (throws after `timeoutMs`). */
async function within(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.round(performance.now() - started);
}

describe('service IPs reconciled on the interface', () => {
  it("binds a master's service IP again within a second after an operator removes it, raises an event, and mail flows through it", async () => {
    const s = (await stores())[0]!;
    expect(await has(s.master.machine, s.serviceIp)).toBe(true);
    expect((await cluster.exec(s.master.machine, ['ip', 'addr', 'del', `${s.serviceIp}/32`, 'dev', 'eth0'])).exitCode).toBe(0);
    const ms = await within(`${s.serviceIp} back on ${s.master.machine}`, 1000, () => has(s.master.machine, s.serviceIp));
    console.log(`service IP ${s.serviceIp} bound again after ${ms} ms`);
    const repaired = await waitFor('the repair event', async () => {
      const found = (await events('slot.address-repaired')).filter((e) => e.slot === s.master.name && e.reason.includes(s.serviceIp));
      return found.length ? found : undefined;
    }, 10_000, 100);
    expect(repaired[0]!.reason).toMatch(/missing from the interface: bound again/);
    await cluster.mail('deliver', [{ host: s.serviceIp, user: 'amy', subject: 'after the repair' }]);
    expect(await cluster.mail<string[][]>('subjects', [{ host: s.serviceIp, user: 'amy' }])).toEqual([['after the repair']]);
  });

  it("releases a store's service IP found on its replica's machine, with an event; the master keeps it", async () => {
    const s = (await stores())[1]!;
    expect((await cluster.exec(s.replica.machine, ['ip', 'addr', 'add', `${s.serviceIp}/32`, 'dev', 'eth0'])).exitCode).toBe(0);
    await within(`${s.serviceIp} gone from ${s.replica.machine}`, 1000, async () => !(await has(s.replica.machine, s.serviceIp)));
    const released = await waitFor('the release event', async () => {
      const found = (await events('slot.address-repaired')).filter((e) => e.slot === s.replica.name && e.reason.includes(s.serviceIp));
      return found.length ? found : undefined;
    }, 10_000, 100);
    expect(released[0]!.reason).toMatch(/does not serve it as master: released/);
    expect(await has(s.master.machine, s.serviceIp)).toBe(true);
  });

  it('does not report a master serving while another host answers for its service IP, and serves again once it is free', async () => {
    const s = (await stores())[2]!;
    // the client namespace takes the address (a misconfigured host on the LAN), then the master loses it
    expect((await cluster.exec('cl', ['ip', 'addr', 'add', `${s.serviceIp}/32`, 'dev', 'eth0'])).exitCode).toBe(0);
    expect((await cluster.exec(s.master.machine, ['ip', 'addr', 'del', `${s.serviceIp}/32`, 'dev', 'eth0'])).exitCode).toBe(0);
    const down = await waitFor(`${s.name}'s master reported not serving`, async () => {
      const now = await store(s.name);
      return now.master.state !== 'SERVING' ? now : undefined;
    }, 10_000, 100);
    expect(down.master.state).toBe('STARTING');
    expect(await has(s.master.machine, s.serviceIp)).toBe(false); // never two hosts answering for it
    const conflict = await waitFor('the address-error event', async () => {
      const found = (await events('slot.address-error')).filter((e) => e.slot === s.master.name);
      return found.length ? found : undefined;
    }, 10_000, 100);
    expect(conflict[0]!.reason).toContain(s.serviceIp);
    expect((await cluster.exec('cl', ['ip', 'addr', 'del', `${s.serviceIp}/32`, 'dev', 'eth0'])).exitCode).toBe(0);
    await waitFor(`${s.name}'s master serving again`, async () => ((await store(s.name)).master.state === 'SERVING' ? true : undefined), 10_000, 100);
    expect(await has(s.master.machine, s.serviceIp)).toBe(true);
    await cluster.mail('deliver', [{ host: s.serviceIp, user: 'amy', subject: 'after the conflict' }]);
    expect(await cluster.mail<string[][]>('subjects', [{ host: s.serviceIp, user: 'amy' }])).toEqual([['after the conflict']]);
  });
});
