// The etcd harness (test/support/etcd.ts) with a real 3-member cluster on loopback, mutual TLS on every port: the
// etcd3 client writes with an etcd-client certificate of the etcd CA; a client without one is refused, and so are
// certificates of the cluster CA (an agent's, an operator's, the coordinator's own) — etcd trusts its own CA only;
// one member lost leaves a quorum, two do not, and stop() leaves no process and no directory behind.
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Etcd3, type IOptions } from 'etcd3';
import { afterAll, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { HARNESS_COORDINATOR } from '../tools/test-pki.js';
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

it('runs 3 members with mutual TLS: only etcd-client certificates of the etcd CA get in, a quorum of two writes, one alone refuses, and nothing is left after stop', async () => {
  const t0 = performance.now();
  const log: string[] = [];
  cluster = await startEtcd({ members: 3, log: (line) => log.push(line) });
  const started = performance.now() - t0;
  expect(cluster.endpoints).toHaveLength(3);
  for (const endpoint of cluster.endpoints) expect(endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  const pids = cluster.names.map((n) => cluster!.member(n).pid!);

  expect(cluster.clientTls.cert).toMatch(/\/etcd-client-co\.crt$/);
  const etcd = client(cluster.clientCredentials());
  await etcd.put('harness/a').value('1');
  expect(await etcd.get('harness/a').string()).toBe('1');

  // certificates of the cluster CA, shown by a client that trusts the members (so that what fails is etcd's check of
  // the client): every mail host has an agent's, and none may write the cluster state past the coordinator
  const strangers = [{ role: 'agent', name: 'm1' }, { role: 'operator', name: 'alice' }, HARNESS_COORDINATOR];
  for (const id of strangers) {
    const forged = client(cluster.credentialsFor(id));
    await expect(forged.put('harness/a').value('forged').options({ deadline: Date.now() + 2000 }), `${id.role} ${id.name}`).rejects.toThrow(/UNAVAILABLE[\s\S]*alert (bad certificate|unknown ca)/i);
  }
  expect(await etcd.get('harness/a').string()).toBe('1');
  // and etcd says why: the handshake failed on the client's certificate, not anything after it
  const rejected = cluster.names.flatMap((n) => readFileSync(cluster!.member(n).logFile, 'utf8').split('\n')).filter((l) => /"rejected connection".*failed to verify client certificate: x509: certificate signed by unknown authority/.test(l));
  expect(rejected.length).toBeGreaterThanOrEqual(strangers.length);

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
