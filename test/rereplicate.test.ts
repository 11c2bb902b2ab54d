// Re-replication on a namespace cluster with real Cyrus and real mail: 4 machines × 6 slots (12 stores, each
// machine's 3 masters replicated to 3 peers). m1 crashes (a power cut), its stores fail over, and the operator
// retires it: every store it left without a replica gets a new replica slot on a peer, filled from the master with a
// full initial sync, checked mailbox by mailbox, and further mail replicates to it. The old slots' files stay.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, type StoreJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('rereplicate');
const cluster = new NetnsCluster({ dir, id: 'r', storePrefix: 'r', machines: 4, slotsPerMachine: 6 });
const USERS = ['ann', 'ben'];
const { stores, expectOneMaster, operation, expectReplicasMatch } = clusterChecks(cluster, USERS);

interface MachineJson {
  name: string;
  state: string;
  retired: boolean;
  fanOut: number;
}

/** Per store: each user's subjects as IMAP shows them on `host` (sorted, for comparison). */
async function mailOn(list: readonly StoreJson[], host: (s: StoreJson) => string): Promise<Record<string, string[]>[]> {
  const got = await cluster.mail<Record<string, string[]>[]>('mailboxes', list.map((s) => ({ host: host(s), users: USERS })));
  return got.map((byUser) => Object.fromEntries(USERS.map((u) => [u, [...(byUser[u] ?? [])].sort()])));
}

useCluster(cluster, dir, 'r');

describe('re-replication after a machine is retired', () => {
  it('gives every store m1 left without a replica a new one on a peer, holding all of the master\'s mail, and replication goes on', async () => {
    const before = await stores();
    // mail in every store (INBOX of two users) and a folder in one, replicated before the crash; one message each
    // first, so that the pooled deliveries do not race to autocreate the same INBOX
    for (const user of USERS) await cluster.mail('deliver', before.map((s) => ({ host: s.serviceIp, user, subject: `first ${s.name}` })));
    await cluster.mail('bulk', before.map((s) => ({ host: s.serviceIp, users: USERS, count: 30, subject: `before ${s.name}` })));
    await cluster.mail('file', [{ host: before[0]!.serviceIp, user: 'ann', folder: 'Projects', subject: 'plan' }]);
    await waitFor('replicas to hold the mail', async () => {
      const now = await stores();
      return now.length === before.length && now.every((s) => s.master.backlog?.files === 0) ? true : undefined;
    }, 60_000, 500);

    const touched = before.filter((s) => s.master.machine === 'm1' || s.replica.machine === 'm1').map((s) => s.name);
    expect(touched.length).toBe(6);
    await cluster.crash('m1');
    await waitFor('m1 stores served by their replicas', async () => {
      const now = (await stores()).filter((s) => touched.includes(s.name));
      return now.length === touched.length && now.every((s) => s.master.machine !== 'm1' && s.master.state === 'SERVING' && s.master.role === 'MASTER') ? true : undefined;
    }, 60_000, 250);

    // a dry run names a new replica on a peer for each of the six stores, changes nothing
    const dry = await cluster.slotctlJson<{ wouldRun: boolean; plan: string[]; problems: string[] }>(['machine', 'retire', 'm1', '--dry-run']);
    expect(dry.problems).toEqual([]);
    expect(dry.plan.length).toBe(6);
    expect((await cluster.slotctlJson<MachineJson[]>(['machine', 'list'])).find((m) => m.name === 'm1')!.retired).toBe(false);

    // masters keep running through it: a replaced replica keeps its IP, so the master's config changes only its epoch
    const masterPids = Object.fromEntries((await stores()).filter((s) => touched.includes(s.name)).map((s) => [s.name, s.master.pid]));
    const started = Date.now();
    const retire = await cluster.slotctl(['machine', 'retire', 'm1', '--no-wait', '--json']);
    expect(retire.exitCode, retire.stderr).toBe(0);
    const ops = JSON.parse(retire.stdout) as OperationJson[];
    expect(ops.map((o) => o.store).sort()).toEqual([...touched].sort());
    const ended = await Promise.all(ops.map((o) => waitFor(`re-replication ${o.id} of ${o.store}`, async () => {
      const now = await operation(o.id);
      return now.state === 'running' ? undefined : now;
    }, 180_000, 500)));
    for (const o of ended) expect(`${o.store}: ${o.state} ${o.error}`).toBe(`${o.store}: succeeded `);
    console.log(`retire m1: ${ended.length} new replicas seeded and verified ${Date.now() - started} ms after the request`);
    for (const o of ended) expect(o.steps.map((s) => s.step)).toEqual(expect.arrayContaining(['create', 'seed', 'verify', 'done']));

    // every store has one master and one replica again, none on m1; each new replica holds exactly the master's mail
    const after = await stores();
    const mine = after.filter((s) => touched.includes(s.name));
    expect(mine.map((s) => s.name).sort()).toEqual([...touched].sort());
    for (const s of mine) {
      const settled = await expectOneMaster(s.name, 30_000);
      expect(settled.master.machine).not.toBe('m1');
      expect(settled.replica.machine).not.toBe('m1');
      expect(settled.replica.machine).not.toBe(settled.master.machine);
      expect(settled.health).toBe('ok');
      expect(settled.master.pid, `${s.name}'s master restarted`).toBe(masterPids[s.name]);
    }
    // every folder of every user, by Message-ID, flags and bytes
    const masters = await expectReplicasMatch(mine, { users: USERS });
    for (const [i, s] of mine.entries()) for (const u of USERS) expect(masters[i]!.master[u]?.INBOX?.length ?? 0, `${s.name} ${u}`).toBeGreaterThanOrEqual(15);
    // the folder was filed in the first store, mastered on m1: one of the stores re-replicated
    const folder = mine.find((s) => s.name === before[0]!.name)!;
    expect(await cluster.mail<string[][]>('folder', [{ host: folder.replica.ip, user: 'ann', folder: 'Projects' }])).toEqual([['plan']]);

    // replication goes on to the new replicas
    await cluster.mail('deliver', mine.map((s) => ({ host: s.serviceIp, user: 'ben', subject: `after retire ${s.name}` })));
    await waitFor('mail delivered after the retire to reach the new replicas', async () => {
      const got = await mailOn(mine, (s) => s.replica.ip);
      return mine.every((s, i) => got[i]!.ben!.includes(`after retire ${s.name}`)) ? true : undefined;
    }, 30_000, 500);
    await expectReplicasMatch(mine, { users: USERS });

    // m1 is retired, out of placement; fan-out is back for every machine with masters; old slots' files are kept
    const machines = await cluster.slotctlJson<MachineJson[]>(['machine', 'list']);
    expect(machines.find((m) => m.name === 'm1')).toMatchObject({ state: 'retired', retired: true });
    const left = machines.filter((x) => x.name !== 'm1');
    expect(left).toHaveLength(3);
    for (const m of left) expect(m.fanOut).toBeGreaterThanOrEqual(2);
    for (const name of touched) expect(existsSync(join(dir, 'srv', 'm1', name, 'data')), `${name}'s old data on m1`).toBe(true);
    // and the planner now sees a balanced, whole cluster on three machines
    const whatif = await cluster.slotctlJson<{ lostStores: string[] }>(['plan', 'whatif', '--lose', 'm2']);
    expect(whatif.lostStores).toEqual([]);
  }, 600_000);
});
