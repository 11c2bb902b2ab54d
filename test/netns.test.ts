// A real multi-machine cluster on one host: 5 machines × 4 slots, each machine a network namespace with its agent
// and its Cyrus slots, service IPs taken with `ip` + `arping`, mail clients in their own namespace. Also the fault
// primitives the failover tests will use, and the ARP-conflict guard.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { clusterChecks } from './cluster/checks.js';
import { NetnsCluster } from './cluster/netns.js';
import { NETNS_PREFIX } from './cluster/netns-cleanup.js';
import { processCommandLines, removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('netns');
const cluster = new NetnsCluster({ dir, id: 'a', machines: 5, slotsPerMachine: 4 });

interface StoreJson {
  name: string;
  serviceIp: string;
  epoch: number;
  master: { name: string; machine: string; state: string };
  replica: { name: string; machine: string; state: string };
}

const stores = () => cluster.slotctlJson<StoreJson[]>(['store', 'list']);
const checks = clusterChecks(cluster, ['amy']);
/** The cluster file as the tests have changed it so far. */
let clusterFile = '';
function moveMaster(store: string, to: string): string {
  const next = clusterFile.replace(new RegExp(`(name: ${store}\n {4}service_ip: \\S+\n {4}master: )m\\d`), `$1${to}`);
  expect(next).not.toBe(clusterFile);
  clusterFile = next;
  return next;
}
const neighbourMac = async (host: string, ip: string) => (await cluster.exec(host, ['ip', 'neigh', 'show', ip])).stdout.match(/lladdr (\S+)/)?.[1];
const macOf = async (host: string) => (await cluster.exec(host, ['cat', '/sys/class/net/eth0/address'])).stdout.trim();

beforeAll(async () => {
  await cluster.start();
  clusterFile = cluster.clusterYaml();
}, 900_000); // may wait for another file's namespace cluster to end

afterAll(async () => {
  await cluster.destroy();
  removeDir(dir);
  // nothing of ours is left: no namespace with the prefix, no process under the test directory
  const left = (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${NETNS_PREFIX}a-`));
  expect(left).toEqual([]);
  expect(processCommandLines().filter((l) => l.includes(dir))).toEqual([]);
}, 60_000);

describe('namespace cluster', () => {
  it('serves every store on its service IP, readable from the client namespace', async () => {
    const list = await stores();
    expect(list).toHaveLength(10);
    expect(new Set(list.map((s) => s.master.machine)).size).toBe(5);
    await cluster.mail('deliver', list.map((s) => ({ host: s.serviceIp, user: 'amy', subject: `to ${s.name}` })));
    const subjects = await cluster.mail<string[][]>('subjects', list.map((s) => ({ host: s.serviceIp, user: 'amy' })));
    expect(subjects).toEqual(list.map((s) => [`to ${s.name}`]));
    // replicated: each replica holds what its master holds, read from the client namespace like the masters
    await checks.expectReplicasMatch(await checks.stores(), { users: ['amy'] });
    // the service IP answers from the master's machine (its MAC), as the client's ARP table shows
    const s = list[0]!;
    expect(await neighbourMac('cl', s.serviceIp)).toBe(await macOf(s.master.machine));
  });

  it('moves a service IP between machines through the agents; the client follows the gratuitous ARP', async () => {
    const before = (await stores()).find((s) => s.name === 'n01')!;
    const from = before.master.machine;
    const to = before.replica.machine;
    expect(await neighbourMac('cl', before.serviceIp)).toBe(await macOf(from));
    // by hand: stop the master (its agent releases the address), then make the other slot master (its agent binds
    // the address and announces it)
    expect((await cluster.slotctl(['slot', 'stop', before.master.name])).exitCode).toBe(0);
    await waitFor('the old master to stop', async () => ((await cluster.slots()).find((x) => x.name === before.master.name)?.state === 'STOPPED' ? true : undefined), 30_000, 100);
    const moved = moveMaster('n01', to);
    const t = performance.now();
    expect((await cluster.slotctl(['cluster', 'apply', '-'], moved)).exitCode).toBe(0);
    await waitFor('a login at the service IP, answered by the new machine', async () => {
      const subjects = await cluster.mail<string[][]>('subjects', [{ host: before.serviceIp, user: 'amy' }]).catch(() => undefined);
      return subjects && (await neighbourMac('cl', before.serviceIp)) === (await macOf(to)) ? true : undefined;
    }, 30_000, 100);
    console.log(`service IP moved and reached on ${to} ${Math.round(performance.now() - t)} ms after the apply`);
    const after = (await stores()).find((s) => s.name === 'n01')!;
    expect(after.master.machine).toBe(to);
    expect(after.epoch).toBe(before.epoch + 1);
    expect((await cluster.slotctl(['slot', 'start', before.master.name])).exitCode).toBe(0);
  });

  it('refuses to take an address that another machine still answers for, and says so', async () => {
    const s = (await stores()).find((x) => x.name === 'n03')!;
    const taker = s.replica.machine;
    // Another host answers for the store's service IP (a hung old master, a stray configuration): here the client's
    // namespace. A paused holder agent stood for it before, but its fence released the address when the lease ran out
    // (4 s), and beside two busy loops that came before the taker's probe. The database moves the master to the taker.
    const stray = ['ip', 'addr', 'add', `${s.serviceIp}/32`, 'dev', 'eth0'];
    expect((await cluster.exec('cl', stray)).exitCode).toBe(0);
    try {
      const moved = moveMaster('n03', taker);
      expect((await cluster.slotctl(['cluster', 'apply', '-'], moved)).exitCode).toBe(0);
      const event = await waitFor('the address-conflict event', async () => {
        const events = await cluster.slotctlJson<{ kind: string; slot: string; reason: string }[]>(['events', '--store', 'n03']);
        return events.find((e) => e.kind === 'slot.address-conflict');
      }, 30_000, 250);
      expect(event.slot).toBe(s.replica.name);
      expect(event.reason).toContain(`${s.serviceIp} is already answered for by another host`);
      // the taker did not bind it
      expect((await cluster.exec(taker, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout).not.toContain(` ${s.serviceIp}/`);
    } finally {
      await cluster.exec('cl', ['ip', 'addr', 'del', `${s.serviceIp}/32`, 'dev', 'eth0']);
    }
    // once nobody else answers for it, the taker takes it on its next try
    await waitFor('the new master to serve', async () => ((await cluster.slots()).find((x) => x.name === s.replica.name)?.state === 'SERVING' ? true : undefined), 60_000, 250);
  });

  it('cuts two machines apart while both still reach everyone else, and heals', async () => {
    const slots = await cluster.slots();
    const on = (m: string) => slots.find((x) => x.machine === m)!.ip;
    expect(await cluster.canConnect('m1', on('m2'), 1143)).toBe(true);
    await cluster.cut('m1', 'm2');
    expect(await cluster.canConnect('m1', on('m2'), 1143)).toBe(false);
    expect(await cluster.canConnect('m2', on('m1'), 1143)).toBe(false);
    expect(await cluster.canConnect('m1', on('m3'), 1143)).toBe(true);
    expect(await cluster.canConnect('m1', cluster.address('co'), 7400)).toBe(true);
    expect(await cluster.canConnect('m2', cluster.address('co'), 7400)).toBe(true);
    await cluster.heal();
    expect(await cluster.canConnect('m1', on('m2'), 1143)).toBe(true);
  });

  it('isolates a machine from everyone and brings it back', async () => {
    const slotIp = (await cluster.slots()).find((s) => s.machine === 'm4')!.ip;
    expect(await cluster.canConnect('cl', slotIp, 1143)).toBe(true);
    await cluster.isolate('m4');
    expect(await cluster.canConnect('cl', slotIp, 1143)).toBe(false);
    expect(await cluster.canConnect('m4', cluster.address('co'), 7400)).toBe(false);
    await cluster.heal();
    expect(await cluster.canConnect('cl', slotIp, 1143)).toBe(true);
  });

  it('pauses an agent: its machine goes suspect then down, and comes back when it continues', async () => {
    cluster.pauseAgent('m5');
    const machines = () => cluster.slotctlJson<{ name: string; state: string }[]>(['machine', 'list']);
    await waitFor('m5 down', async () => ((await machines()).find((m) => m.name === 'm5')?.state === 'down' ? true : undefined), 15_000, 250);
    cluster.resumeAgent('m5');
    await waitFor('m5 up', async () => ((await machines()).find((m) => m.name === 'm5')?.state === 'up' ? true : undefined), 15_000, 250);
  });

  it('stops and starts the coordinator', async () => {
    await cluster.stopCoordinator();
    expect((await cluster.slotctl(['--rpc-timeout', '1s', 'status'])).exitCode).toBe(1);
    await cluster.startCoordinator();
    await waitFor('all machines up again', async () => {
      const machines = await cluster.slotctlJson<{ state: string; connected: boolean }[]>(['machine', 'list']);
      return machines.length === cluster.machines.length && machines.every((m) => m.state === 'up' && m.connected) ? true : undefined;
    }, 30_000, 250);
  });

  it('pnpm test:cleanup removes what a killed run left behind', async () => {
    // A second, small harness that is never destroyed: as if its test process had been killed.
    const leftDir = tempDir('netns-left');
    const left = new NetnsCluster({ dir: leftDir, id: 'z', machines: 2 });
    await left.createNetwork();
    await left.startCoordinator();
    const result = await execa('node', ['--import', 'tsx', 'test/cluster/cleanup.ts', '--id', 'z', '--dir', leftDir], { cwd: ROOT, reject: false });
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/test:cleanup: 1 process\(es\) stopped, 5 namespace\(s\) removed: (slttz-(sw|co|cl|m1|m2)(, |$)){5}/);
    expect((await execa('ip', ['netns', 'list'])).stdout).not.toContain(`${NETNS_PREFIX}z-`);
    removeDir(leftDir);
  });

  it('crashes a machine: agent and every Cyrus process of it gone at once', async () => {
    const slotIp = (await cluster.slots()).find((s) => s.machine === 'm3')!.ip;
    const agentPid = cluster.agentPid('m3');
    await cluster.crash('m3');
    expect(() => process.kill(agentPid, 0)).toThrow();
    expect(await cluster.canConnect('cl', slotIp, 1143)).toBe(false);
    expect(processCommandLines().filter((l) => l.includes(`${dir}/srv/m3/`))).toEqual([]);
  });
});
