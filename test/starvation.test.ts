// Start-up under CPU starvation: a namespace cluster of 5 machines × 8 slots (40 Cyrus instances on this host) comes
// up while two busy loops saturate both cores, and an agent is restarted under the same load. A busy host must not
// cost a lease: every slot serves, no fence process kills anything, no agent's lease runs out, no machine is
// declared down. (Seen on a fresh machine before: fences at start-up while the masters were starting, and stores
// that never came up within a minute.)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { clusterChecks, useCluster } from './cluster/checks.js';
import { NetnsCluster } from './cluster/netns.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('starvation');
const cluster = new NetnsCluster({ dir, id: 'c', machines: 5, slotsPerMachine: 8, storePrefix: 'c' });
const { stores, waitAgentsConnected } = clusterChecks(cluster, ['amy']);

interface EventJson {
  kind: string;
  machine: string;
  reason: string;
}

/** Everything that says a lease was lost: the fence's record, the agents' own lines, the coordinator's verdicts. */
async function leaseLosses(): Promise<string[]> {
  const out: string[] = [];
  for (const m of cluster.machines) {
    const fenced = join(dir, 'agents', m, 'fenced.json');
    if (existsSync(fenced)) out.push(`${m}: fence process acted: ${readFileSync(fenced, 'utf8').trim()}`);
    const log = readFileSync(join(dir, 'logs', `agent-${m}.log`), 'utf8');
    for (const line of log.split('\n')) if (/lease expired|lease ran out/.test(line)) out.push(`${m}: ${line.slice(0, 300)}`);
  }
  const events = await cluster.slotctlJson<EventJson[]>(['events', '--limit', '100000']);
  expect(events.length, 'events recorded').toBeGreaterThan(0);
  for (const e of events) if (e.kind === 'machine.down') out.push(`coordinator: ${e.kind} ${e.machine}: ${e.reason}`);
  return out;
}

useCluster(cluster, dir, 'c', { busyLoops: 2, servingTimeoutMs: 180_000 });

describe('a cluster on a saturated host', () => {
  it('comes up with two busy loops on both cores: every slot serves, nothing fenced, no machine down, mail flows', async () => {
    const list = await stores();
    expect(list).toHaveLength(20);
    expect(await leaseLosses()).toEqual([]);
    await cluster.mail('deliver', list.map((s) => ({ host: s.serviceIp, user: 'amy', subject: `busy ${s.name}` })));
    const subjects = await cluster.mail<string[][]>('subjects', list.map((s) => ({ host: s.serviceIp, user: 'amy' })));
    expect(subjects).toEqual(list.map((s) => [`busy ${s.name}`]));
  });

  it('restarts an agent under the same load: its running slots are re-adopted, nothing fenced, no machine down', async () => {
    const before = (await cluster.slots()).filter((s) => s.machine === 'm2');
    expect(before.length).toBe(8);
    const pids = await cluster.slotctlJson<{ name: string; machine: string; pid: number }[]>(['slot', 'list']);
    await cluster.killAgent('m2');
    cluster.startAgent('m2');
    await waitAgentsConnected();
    await cluster.waitServing(120_000);
    const after = await cluster.slotctlJson<{ name: string; machine: string; pid: number }[]>(['slot', 'list']);
    const pidOf = (list: typeof pids, name: string) => list.find((s) => s.name === name)?.pid;
    for (const s of before) expect(pidOf(after, s.name), `${s.name} re-adopted, not restarted`).toBe(pidOf(pids, s.name));
    expect(await leaseLosses()).toEqual([]);
    await waitFor('m2 up', async () => ((await cluster.slotctlJson<{ name: string; state: string }[]>(['machine', 'list'])).find((m) => m.name === 'm2')?.state === 'up' ? true : undefined), 30_000, 200);
  });
});
