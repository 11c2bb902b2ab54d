// Coordinators without a single point of failure, on a namespace cluster with real Cyrus, real mail and real etcd: three
// etcd members and three coordinators in namespaces of their own, five machines whose agents know every coordinator.
// The cluster starts on one coordinator with SQLite and is moved to etcd (export, import: same epochs, same
// operations); then the leader is killed in the middle of a switchover under mail load, isolated from etcd while it
// still reaches the agents, an etcd member is lost, then quorum — and a machine crashes while there is no leader.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, waitFor } from '../tools/local-cluster.js';
import { HARNESS_COORDINATOR, tlsArgs } from '../tools/test-pki.js';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, type StoreJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('ha');
const cluster = new NetnsCluster({ dir, id: 'h', machines: 5, slotsPerMachine: 4, ha: { coordinators: 3, etcd: 3, startOn: 'sqlite' } });
const ha = cluster.ha!;
const USERS = ['ann', 'ben'];
const { stores, store, ended, expectOneMaster, waitAgentsConnected, expectNoLoss, watchMasters, expectNeverTwoMasters, loadTargets } = clusterChecks(cluster, USERS);

interface MachineJson { name: string; state: string; connected: boolean }
interface EventJson { id: number; kind: string; machine?: string; reason: string }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const operations = () => cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all', '--limit', '1000']);
const operationsOf = async (kind: string, since: number) => (await operations()).filter((o) => o.kind === kind && Date.parse(o.createdAt) >= since);
const events = (since: number) => cluster.slotctlJson<EventJson[]>(['events', '--since', new Date(since).toISOString(), '--limit', '10000']);

async function switchover(name: string): Promise<OperationJson> {
  const r = await cluster.slotctl(['store', 'switchover', name, '--json']);
  expect(r.exitCode, r.stderr).toBe(0);
  const op = (await operations()).filter((o) => o.store === name && o.kind === 'switchover').pop()!;
  return ended(op.id, `the switchover of ${name}`, 90_000);
}

/** What must not change when a cluster moves between backends: every store's master and epoch, every operation. */
async function snapshot() {
  const s = (await stores()).map((x) => ({ name: x.name, epoch: x.epoch, master: x.master.name }));
  const o = (await operations()).map((x) => ({ id: x.id, kind: x.kind, state: x.state, step: x.step }));
  return { stores: s, operations: o };
}

useCluster(cluster, dir, 'h');

describe('coordinators on etcd, on a namespace cluster', () => {
  it('moves from SQLite to etcd (export, import) and carries on: same epochs, same operations; agents find the leader among three', async () => {
    const first = await switchover('n01');
    expect(first.state, first.error).toBe('succeeded');
    const before = await snapshot();
    await ha.stop('c1');
    const file = join(dir, 'state.json');
    const exported = await cluster.exec('c1', ['node', BIN.coordinator, 'export', '--data-dir', join(dir, 'coordinator'), '--out', file]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    const imported = await cluster.exec('c1', ['node', BIN.coordinator, 'import', file, ...ha.etcdArgs(), ...tlsArgs(cluster.pkiDir, HARNESS_COORDINATOR)]);
    expect(imported.exitCode, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported into etcd \/slotctl: machines 5, stores 10/);
    ha.movedToEtcd = true;
    await cluster.startCoordinator();
    await waitAgentsConnected();
    expect(await snapshot()).toEqual(before);
    const status = await cluster.slotctl(['status']);
    expect(status.stdout).toMatch(/leader at term \d+, state in etcd \/slotctl/);
    const second = await switchover('n02');
    expect(second.state, second.error).toBe('succeeded');
  }, 240_000);

  it('the leader killed in the middle of a switchover: another leads, the switchover completes, no acknowledged message is lost, never two masters', async () => {
    // the leader armed to kill itself right after the flip's action (its etcd write may not be done yet)
    const leader = await ha.waitLeader();
    await waitAgentsConnected();
    const all = await stores();
    const name = 'n03';
    const before = await expectOneMaster(name);
    const watch = await watchMasters(all);
    const load = cluster.startLoad('ha-load1', loadTargets(all), 20);
    let result;
    try {
      await sleep(2000);
      ha.armCrash(leader, 'flip:after');
      // the leader may die before it answers
      const asked = await cluster.slotctl(['store', 'switchover', name, '--json']);
      // Either the armed leader dies at the flip, or the switchover ended without passing it there (refused, rolled
      // back, or run by another leader): that says why instead of waiting out the minute in silence.
      const outcome = await waitFor('the armed leader to kill itself, or the switchover to end without it', async () => {
        if (ha.process(leader)?.exited) return 'killed';
        const op = await operations().then((all) => all.filter((o) => o.store === name && o.kind === 'switchover').pop(), () => undefined);
        return op && op.state !== 'running' ? op : undefined;
      }, 60_000, 50);
      if (outcome !== 'killed') {
        const steps = outcome.steps.map((x) => `${x.at.slice(11, 23)} ${x.step}: ${x.reason}`).join('\n    ');
        throw new Error(
          `the switchover of ${name} ended ${outcome.state} (${outcome.error || 'no error'}) without the armed leader ${leader} passing its flip; ` +
            `leader now ${(await ha.leader()) ?? 'none'}; ${leader} lost its leadership at ${JSON.stringify(ha.logTimes(leader, 'leadership lost').map((t) => new Date(t).toISOString()))}; ` +
            `switchover asked: exit ${asked.exitCode} ${asked.stdout.trim()} ${asked.stderr.trim()}\n  steps:\n    ${steps}`,
        );
      }
      const next = await ha.waitLeader(30_000, leader);
      console.log(`leader ${leader} killed at flip:after; ${next} leads`);
      const op = (await operations()).filter((o) => o.store === name && o.kind === 'switchover').pop()!;
      const done = await ended(op.id, `the switchover of ${name} to end under the new leader`, 120_000);
      expect(done.state, done.error).toBe('succeeded');
      await sleep(2000);
    } finally {
      const summary = await load.stop();
      result = await watch.stop();
      ha.armCrash(leader, '');
      if (ha.process(leader)?.exited) ha.startOne(leader);
      console.log(`load: ${JSON.stringify(summary)}`);
    }
    expectNeverTwoMasters(result, all.filter((s) => s.name !== name));
    expect(result.dual, 'two masters').toEqual([]);
    const after = await expectOneMaster(name);
    expect(after.master.name).toBe(before.replica.name);
    await expectNoLoss(load.out, all.map((s) => s.name));
  }, 300_000);

  it('a leader cut from etcd but not from its agents stops acting before another is elected; nothing is fenced or failed over', async () => {
    await waitAgentsConnected();
    const all = await stores();
    const leader = await ha.waitLeader();
    const since = Date.now();
    const watch = await watchMasters(all);
    let result;
    try {
      for (const e of ha.members) await cluster.cut(leader, e);
      const next = await ha.waitLeader(30_000, leader);
      await waitAgentsConnected();
      const lost = ha.logTimes(leader, 'leadership lost').filter((t) => t >= since);
      const elected = ha.logTimes(next, 'elected leader coordinator').filter((t) => t >= since);
      console.log(`${leader} cut from etcd: it gave up ${lost[0]! - since} ms after the cut, ${next} was elected ${elected[0]! - since} ms after it`);
      expect(lost.length, `${leader} says it lost the leadership`).toBe(1);
      expect(elected.length, `${next} says it was elected`).toBe(1);
      // on failure, what both said around the cut (warnings and errors)
      const around = () => [leader, next].map((n) => `${n}:\n${readFileSync(join(dir, 'logs', `coordinator-${n}.log`), 'utf8').split('\n').filter((l) => l.includes('"level":40') || l.includes('"level":50')).filter((l) => Date.parse(/"time":"([^"]+)"/.exec(l)?.[1] ?? '') >= since - 2000).slice(0, 20).join('\n')}`).join('\n');
      expect(lost[0]!, `the old leader stopped before the new one was elected\n${lost[0]! >= elected[0]! ? around() : ''}`).toBeLessThan(elected[0]!);
      await sleep(3000);
    } finally {
      result = await watch.stop();
      await cluster.heal();
    }
    expectNeverTwoMasters(result, all, 0.99); // every master served throughout: none was fenced
    expect(await operationsOf('failover', since)).toEqual([]);
    const downs = (await events(since)).filter((e) => e.kind === 'machine.down');
    expect(downs).toEqual([]);
    for (const s of await stores()) expect(s.epoch, s.name).toBe(all.find((x) => x.name === s.name)!.epoch);
  }, 180_000);

  it('loses one etcd member and changes nothing; loses quorum: no decisions, no fences; a machine crashed meanwhile fails over once quorum is back', async () => {
    await waitAgentsConnected();
    const all = await stores();
    const leader = await ha.waitLeader();
    const since = Date.now();
    // one member lost — etcd's own leader, the worst one (an election of etcd's): the same leader, and it decides
    const etcdLeader = (await ha.etcd.leader())!;
    const others = ha.members.filter((m) => m !== etcdLeader);
    await ha.etcd.kill(etcdLeader);
    const moved = await switchover('n04');
    expect(moved.state, moved.error).toBe('succeeded');
    expect(await ha.leader()).toBe(leader);
    expect(ha.logTimes(leader, 'leadership lost').filter((t) => t >= since)).toEqual([]);
    // quorum lost: nobody leads, masters keep serving (the failsafe), then m5 crashes
    const victim = 'm5';
    // a machine whose masters replicate to the victim loses its failsafe when the victim stops answering (it cannot
    // tell a crash from a partition) and fences: the stores that must keep serving are the others'
    const now = await stores();
    const partners = (m: string) => new Set(now.filter((s) => s.master.machine === m).map((s) => s.replica.machine));
    const survivors = now.filter((s) => s.master.machine !== victim && !partners(s.master.machine).has(victim));
    expect(survivors.length).toBeGreaterThan(0);
    const lost = now.filter((s) => s.master.machine === victim);
    const watch = await watchMasters(survivors);
    await ha.etcd.kill(others[0]!);
    let result;
    try {
      await waitFor('no coordinator to lead', async () => ((await ha.leader()) === undefined ? true : undefined), 30_000, 250);
      const noQuorumAt = Date.now();
      await cluster.crash(victim);
      // twice an agent lease and its margin: nothing decides, nothing fences
      await sleep(12_000);
      expect(await ha.leader()).toBeUndefined();
      expect((await cluster.slotctl(['store', 'list', '--json'])).stderr).toMatch(/not the leader/);
      result = await watch.stop();
      console.log(`no quorum for ${Date.now() - noQuorumAt} ms`);
    } finally {
      if (!result) result = await watch.stop();
      await ha.etcd.restart(others[0]!);
      await ha.etcd.restart(etcdLeader);
    }
    expectNeverTwoMasters(result, survivors, 0.99); // nothing fenced while nobody led
    const crashedAt = Date.now();
    await ha.waitLeader(60_000);
    await waitFor(`${victim}'s stores to be served from its peers`, async () => {
      const now = await stores();
      return lost.every((b) => {
        const s = now.find((x) => x.name === b.name)!;
        return s.master.name === b.replica.name && s.master.state === 'SERVING' && s.epoch === b.epoch + 1;
      }) ? true : undefined;
    }, 120_000, 500);
    console.log(`quorum back: ${victim}'s ${lost.length} stores served from peers ${Date.now() - crashedAt} ms later`);
    const down = (await events(since)).filter((e) => e.kind === 'machine.down').map((e) => e.machine);
    expect(down).toEqual([victim]);
    expect((await operationsOf('failover', since)).map((o) => o.store).sort()).toEqual(lost.map((s) => s.name).sort());
    for (const s of survivors) expect((await store(s.name)).epoch, s.name).toBe(all.find((x) => x.name === s.name)!.epoch);
    await cluster.powerOn(victim);
  }, 300_000);
});

export type { StoreJson, MachineJson };
