// The start hold at a short lease, with real agents, real Cyrus slots and the real coordinator: while a machine's
// slots start, its heartbeats say `starting` and the coordinator grants the default lease's length (5 s) instead of
// the configured 2 s — at a 2 s lease a cluster's start on a 2-core host had fenced starting masters (BENCHMARKS.md,
// issue 21). Once every slot serves, the configured lease is granted again: failure detection in steady state is
// not slowed. What an agent was granted is read from its /metrics; what the coordinator held, from its log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { HARNESS_OPERATOR } from '../tools/test-pki.js';
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

beforeAll(() => cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], SLOTS));

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('the start hold', () => {
  it('grants a machine whose slots are starting the default lease (5 s), and the configured 2 s once they serve', async () => {
    // the slots started during bringUp: each machine's hold began then, and the coordinator said so once per hold
    const holds = readLogLines(cluster.coordinatorLog()).filter((l) => /agent is starting slots: its lease is held 3000 ms longer/.test(String(l.msg)));
    expect([...new Set(holds.map((l) => l.machine))].sort()).toEqual(['m1', 'm2']);
    expect(holds.every((l) => l.why === 'starting')).toBe(true);

    // every slot serves: the next acknowledgements grant 2 s again
    for (const m of ['m1', 'm2']) await waitFor(`${m}'s agent granted the 2-s lease again`, async () => ((await grantedLeaseSeconds(m)) === 2 ? true : undefined), 15_000, 250);

    // a slot started again (an operator's stop and start of a replica) asks for the hold again
    const before = holds.length;
    expect((await cluster.slotctl(['slot', 'stop', SLOTS[1]!])).exitCode).toBe(0);
    await cluster.waitSlotState(SLOTS[1]!, 'STOPPED', 60_000);
    expect((await cluster.slotctl(['slot', 'start', SLOTS[1]!])).exitCode).toBe(0);
    await waitFor('a new start hold for m2', async () => {
      const now = readLogLines(cluster.coordinatorLog()).filter((l) => /agent is starting slots/.test(String(l.msg)));
      return now.length > before && now.at(-1)!.machine === 'm2' ? true : undefined;
    }, 30_000, 250);
    await cluster.waitSlotState(SLOTS[1]!, 'SERVING', 60_000);
    await waitFor("m2's agent granted the 2-s lease again", async () => ((await grantedLeaseSeconds('m2')) === 2 ? true : undefined), 15_000, 250);
  }, 180_000);
});
