// Each agent's /metrics and /readyz, scraped as Prometheus would: over mutual TLS with an operator's certificate,
// from two real agents running real Cyrus slots. The master slot shows role master on its agent and its replica
// replica on the other; stopping the replica and delivering mail makes the master's backlog grow in the master
// agent's metrics (the same figures the coordinator gets), and it drains when the replica starts again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { HARNESS_OPERATOR } from '../tools/test-pki.js';
import { httpsGet } from '../tools/https-get.js';
import { parseExposition, value } from '../tools/exposition.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { deliver } from './support/mail.js';


const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const MASTER = `${PREFIX}01-m1`;
const REPLICA = `${PREFIX}01-m2`;
const STORE = `${PREFIX}01`;
const dir = tempDir('agent-metrics');
const cluster = new LocalCluster({ dir });

/** GET `path` from `machine`'s agent as the harness operator. */
async function get(machine: string, path: string): Promise<{ status: number; body: string }> {
  return httpsGet(new URL(path, await cluster.agentHttpUrl(machine)), cluster.pkiDir, HARNESS_OPERATOR, 5000);
}

/** One scrape: value of `name` with these labels (undefined: no such sample). */
async function scrape(machine: string): Promise<(name: string, labels?: Record<string, string>) => number | undefined> {
  const answer = await get(machine, '/metrics');
  expect(answer.status).toBe(200);
  const families = parseExposition(answer.body);
  return (name, labels = {}) => {
    return value(families, name, labels);
  };
}

beforeAll(() =>
  cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], [MASTER, REPLICA, `${PREFIX}02-m1`, `${PREFIX}02-m2`], { diskReportInterval: '5s' }),
);

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe("agents' metrics over mutual TLS", () => {
  it('shows each agent connected with a lease, each slot in the role it runs in, and is ready', async () => {
    for (const machine of ['m1', 'm2']) {
      const ready = await waitFor(`${machine} ready`, async () => {
        const r = await get(machine, '/readyz');
        return r.status === 200 ? r : undefined;
      }, 15_000, 200);
      expect(JSON.parse(ready.body)).toMatchObject({ ready: true, connected: true });
    }
    const m1 = await scrape('m1');
    expect(m1('slotctl_agent_connected')).toBe(1);
    expect(m1('slotctl_agent_lease_remaining_seconds')).toBeGreaterThan(0);
    expect(m1('slotctl_agent_lease_seconds')).toBe(5);
    expect(m1('slotctl_slot_role', { slot: MASTER, store: STORE, role: 'master' })).toBe(1);
    expect(m1('slotctl_slot_role', { slot: MASTER, role: 'replica' })).toBeUndefined();
    expect(m1('slotctl_slot_role', { slot: `${PREFIX}02-m1`, role: 'replica' })).toBe(1);
    expect(m1('slotctl_slot_state', { slot: MASTER, state: 'serving' })).toBe(1);
    // counters are there from the start (at 0 unless this busy host already cost a lease or a crash)
    expect(m1('slotctl_fence_actions_total', { action: 'lease-expired' })).toBeGreaterThanOrEqual(0);
    expect(m1('slotctl_cyrus_restarts_total', { slot: MASTER })).toBeGreaterThanOrEqual(0);
    const m2 = await scrape('m2');
    expect(m2('slotctl_slot_role', { slot: REPLICA, store: STORE, role: 'replica' })).toBe(1);
    expect(m2('slotctl_slot_role', { slot: `${PREFIX}02-m2`, role: 'master' })).toBe(1);
    // the partitions of the agent's own measurement, once it has measured (--disk-report-interval 5s)
    const measured = await waitFor('a partition measurement in the metrics', async () => {
      const m = await scrape('m1');
      return (m('slotctl_partition_size_bytes', { slot: MASTER, partition: 'data' }) ?? 0) > 0 ? m : undefined;
    }, 30_000, 500);
    expect(measured('slotctl_partition_used_bytes', { slot: MASTER, store: STORE, partition: 'meta' })).toBeGreaterThan(0);
    expect(measured('slotctl_partition_inodes_total', { slot: MASTER, partition: 'data' })).toBeGreaterThan(0);
  });

  it("makes the master's backlog grow in the master agent's metrics while its replica is stopped, and drain after", async () => {
    expect((await cluster.slotctl(['slot', 'stop', REPLICA])).exitCode).toBe(0);
    await cluster.waitSlotState(REPLICA, 'STOPPED');
    const m2 = await scrape('m2');
    expect(m2('slotctl_slot_role', { slot: REPLICA, role: 'none' })).toBe(1);
    expect(m2('slotctl_slot_state', { slot: REPLICA, state: 'stopped' })).toBe(1);

    const before = await scrape('m1');
    expect(before('slotctl_slot_backlog_files', { slot: MASTER, store: STORE })).toBe(0);
    await deliver(`127.${NET}.3.1`, 2003, [{ user: 'amy', subject: 'waiting 1' }, { user: 'bob', subject: 'waiting 2' }]);
    const grown = await waitFor('the backlog in the metrics', async () => {
      const m = await scrape('m1');
      return (m('slotctl_slot_backlog_files', { slot: MASTER, store: STORE }) ?? 0) > 0 ? m : undefined;
    }, 15_000, 250);
    expect(grown('slotctl_slot_backlog_bytes', { slot: MASTER, store: STORE })).toBeGreaterThan(0);
    // the same figure the coordinator holds from the agent's report
    const reported = (await cluster.slot(MASTER)).backlog!;
    expect(reported.files).toBeGreaterThan(0);
    // the master keeps serving, with its lease: still ready
    expect((await get('m1', '/readyz')).status).toBe(200);

    expect((await cluster.slotctl(['slot', 'start', REPLICA])).exitCode).toBe(0);
    await waitFor('the backlog to drain in the metrics', async () => {
      const m = await scrape('m1');
      return m('slotctl_slot_backlog_files', { slot: MASTER, store: STORE }) === 0 ? true : undefined;
    }, 30_000, 250);
    const after = await scrape('m2');
    expect(after('slotctl_slot_role', { slot: REPLICA, role: 'replica' })).toBe(1);
  });
});
