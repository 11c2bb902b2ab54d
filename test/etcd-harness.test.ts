// The etcd harness (test/support/etcd.ts) with a real 3-member cluster on loopback, mutual TLS on every port: the
// etcd3 client writes with a coordinator's certificate, a client without one is refused, one member lost leaves a
// quorum, two do not, and stop() leaves no process and no directory behind.
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { Etcd3, type IOptions } from 'etcd3';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { EtcdStartError, type EtcdTestCluster, startEtcd } from './support/etcd.js';

let cluster: EtcdTestCluster | undefined;
const clients: Etcd3[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await cluster?.stop();
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** A client of every member; each call has its own deadline (retries share it, so a lost quorum fails within it). */
function client(credentials: IOptions['credentials']): Etcd3 {
  const c = new Etcd3({ hosts: cluster!.endpoints, credentials, dialTimeout: 2000, defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + 3000 }) });
  clients.push(c);
  return c;
}

it('runs 3 members with mutual TLS: a quorum of two writes, one alone refuses, and nothing is left after stop', async () => {
  const t0 = performance.now();
  const log: string[] = [];
  cluster = await startEtcd({ members: 3, log: (line) => log.push(line) });
  const started = performance.now() - t0;
  expect(cluster.endpoints).toHaveLength(3);
  for (const endpoint of cluster.endpoints) expect(endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const pids = cluster.names.map((n) => cluster!.member(n).pid!);

  const etcd = client(cluster.clientCredentials());
  await etcd.put('harness/a').value('1');
  expect(await etcd.get('harness/a').string()).toBe('1');

  // mutual: the servers' certificates are good, but a client without one of its own is refused
  const anonymous = client({ rootCertificate: cluster.clientCredentials().rootCertificate });
  await expect(anonymous.get('harness/a').options({ deadline: Date.now() + 2000 }).string()).rejects.toThrow(/certificate|handshake|UNAVAILABLE|No connection/i);

  // the leader lost: the other two elect one and take writes again
  const leader = await waitFor('a leader', () => cluster!.leader(), 5000, 100);
  await cluster.kill(leader);
  const t1 = performance.now();
  const remaining = cluster.names.filter((n) => n !== leader);
  await cluster.waitHealthy(remaining, 10_000);
  const reelected = performance.now() - t1;
  await etcd.put('harness/b').value('2');
  expect(await etcd.get('harness/b').string()).toBe('2');
  expect(await cluster.leader()).toMatch(new RegExp(`^(${remaining.join('|')})$`));

  // a second lost: no quorum, and a write fails within its deadline instead of hanging
  const second = remaining[0]!;
  await cluster.kill(second);
  const t2 = performance.now();
  await expect(etcd.put('harness/c').value('3').options({ deadline: Date.now() + 2000 })).rejects.toThrow();
  const refused = performance.now() - t2;
  expect(refused).toBeLessThan(4000);
  const health = await cluster.health();
  expect(health.filter((h) => h.healthy)).toEqual([]);
  expect(health.filter((h) => h.error === 'not running').map((h) => h.name).sort()).toEqual([leader, second].sort());

  for (const c of clients.splice(0)) c.close();
  const dir = cluster.dir;
  await cluster.stop();
  for (const pid of pids) expect(alive(pid)).toBe(false);
  if (process.env.KEEP_TEST_DIRS !== '1') expect(existsSync(dir)).toBe(false);
  console.log(`etcd harness: started in ${Math.round(started)} ms, healthy again ${Math.round(reelected)} ms after the leader was killed, a write without quorum refused in ${Math.round(refused)} ms`);
}, 30_000);

it('leaves nothing behind when a member cannot start', async () => {
  // the third member's client port is taken: it exits at once while the other two run
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  const port = (busy.address() as { port: number }).port;
  const log: string[] = [];
  try {
    await expect(startEtcd({ members: ['e1', 'e2', { name: 'e3', clientPort: port }], log: (line) => log.push(line) })).rejects.toThrow(EtcdStartError);
  } finally {
    busy.close();
  }
  const pids = log.map((line) => Number(/started \(pid (\d+)\)/.exec(line)?.[1])).filter(Boolean);
  expect(pids).toHaveLength(3);
  for (const pid of pids) expect(alive(pid)).toBe(false);
  const dir = /in (\S+)$/.exec(log[0]!)?.[1];
  expect(dir).toMatch(/slotctl-etcd-/);
  if (process.env.KEEP_TEST_DIRS !== '1') expect(existsSync(dir!)).toBe(false);
}, 30_000);
