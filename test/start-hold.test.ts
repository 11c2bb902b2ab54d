// The start hold at a short lease, with real agents, real Cyrus slots and the real coordinator: while a machine's
// slots start, its heartbeats say `starting` and the coordinator grants the default lease's length (5 s) instead of
// the configured 2 s — at a 2 s lease a cluster's start on a 2-core host had fenced starting masters (BENCHMARKS.md,
// issue 21). Once every slot serves, the configured lease is granted again: failure detection in steady state is
// not slowed. What an agent was granted is read from its /metrics and its log; what the coordinator held, from its
// log. (A slot's own start — lifecycle `starting` — also asks for the hold; on an idle host it can be shorter than a
// heartbeat interval, so it is not asserted here: the failover benchmark's start-ups measure it.)
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateFiles, channelCredentials, expectIdentity, loadContract, tlsPaths } from '@slotctl/shared';
import type { HeartbeatAck__Output } from '@slotctl/shared';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { HARNESS_OPERATOR, ensureCertificates } from '../tools/test-pki.js';
import { httpsGet } from '../tools/https-get.js';
import { parseExposition, value } from '../tools/exposition.js';
import { readLogLines, removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const SLOTS = [`${PREFIX}01-m1`, `${PREFIX}01-m2`, `${PREFIX}02-m1`, `${PREFIX}02-m2`];
const dir = tempDir('start-hold');
const cluster = new LocalCluster({ dir, heartbeatInterval: '250ms', lease: '2s' });

/** The lease `machine`'s agent was last granted, in seconds (its /metrics, as Prometheus reads it). */
async function grantedLeaseSeconds(machine: string): Promise<number | undefined> {
  const answer = await httpsGet(new URL('/metrics', await cluster.agentHttpUrl(machine)), cluster.pkiDir, HARNESS_OPERATOR, 5000);
  return answer.status === 200 ? value(parseExposition(answer.body), 'slotctl_agent_lease_seconds', {}) : undefined;
}

// m3 has no agent and no slot: the test speaks for it itself (a session, then renewals outside it)
const clusterText = twoMachineCluster(dir, NET, PREFIX).replace('stores:', `  - { name: m3, address: 127.${NET}.0.3 }\nstores:`);
beforeAll(() => cluster.bringUp(clusterText, ['m1', 'm2'], SLOTS));

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('the start hold', () => {
  it('grants a starting machine the default lease (5 s) and says so on both sides; the configured 2 s once its slots serve', async () => {
    // bringUp started both agents: their first heartbeats (before the first desired state was applied) asked for the
    // hold, whatever the slots' own start took; the coordinator said each hold once, each agent the grant it got
    const holds = readLogLines(cluster.coordinatorLog()).filter((l) => /agent is starting slots: its lease is held 3000 ms longer/.test(String(l.msg)));
    expect([...new Set(holds.map((l) => l.machine))].sort()).toEqual(['m1', 'm2']);
    for (const m of ['m1', 'm2']) {
      // every slot serves: the next acknowledgements grant 2 s again
      await waitFor(`${m}'s agent granted the 2-s lease again`, async () => ((await grantedLeaseSeconds(m)) === 2 ? true : undefined), 15_000, 250);
      const grants = readLogLines(cluster.agents.get(m)!.logFile).filter((l) => /^the coordinator now grants a lease of/.test(String(l.msg))).map((l) => [l.wasMs, l.leaseMs]);
      expect(grants.slice(0, 2), `${m}: held at 5 s, then back to 2 s`).toEqual([
        [2000, 5000],
        [5000, 2000],
      ]);
      // and no fence fired while they started
      expect(existsSync(join(dir, 'agents', m, 'fenced.json')), `${m}'s fence fired`).toBe(false);
    }
  }, 120_000);

  it('grants the hold on a renewal outside the session that says starting, and counts it before it answers', async () => {
    ensureCertificates(cluster.pkiDir, [{ role: 'agent', name: 'm3' }]);
    const { Agent } = loadContract().slotctl.v1;
    const m3 = new CertificateFiles(tlsPaths(cluster.pkiDir, { role: 'agent', name: 'm3' }));
    const client = new Agent(cluster.target, channelCredentials(m3, expectIdentity('coordinator')));
    const stream = client.Session();
    try {
      const welcomed = new Promise<void>((resolve, reject) => {
        stream.on('data', (m: { body?: string }) => m.body === 'welcome' && resolve());
        stream.on('error', reject);
      });
      stream.write({ hello: { machine: 'm3', instanceId: 'start-hold-test', agentVersion: '0.1.0', slots: [] } });
      await welcomed;
      const renew = (seq: number, starting: boolean) =>
        new Promise<HeartbeatAck__Output>((resolve, reject) =>
          client.Renew({ machine: 'm3', instanceId: 'start-hold-test', seq, starting }, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, ack?: HeartbeatAck__Output) => (err ? reject(err) : resolve(ack!))),
        );
      expect((await renew(1, false)).leaseMs).toBe(2000);
      const before = readLogLines(cluster.coordinatorLog()).length;
      expect((await renew(2, true)).leaseMs).toBe(5000);
      // the coordinator counted it (and said so: its log is written by the process, read here from the file)
      await waitFor("the coordinator's word on m3's hold", () => (readLogLines(cluster.coordinatorLog()).slice(before).some((l) => l.machine === 'm3' && /agent is starting slots: its lease is held 3000 ms longer/.test(String(l.msg))) ? true : undefined), 5000, 50);
      expect((await renew(3, false)).leaseMs).toBe(2000);
    } finally {
      stream.cancel();
      client.close();
      m3.close();
    }
  }, 60_000);
});
