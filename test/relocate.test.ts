// Filling a new machine and emptying an old one on a namespace cluster, real Cyrus, real mail under load (issue 22):
// an empty fifth machine joins a cluster of four (`machine add m5 --apply`: replicas moved to it, then its share of
// masters) until balance and fan-out are reached; then `machine evacuate m1` leaves m1 holding nothing. Sampled all
// along: every store keeps two copies on two machines (a switchover stops both for a moment, nothing else does), and
// at the end no acknowledged message is lost and every replica holds what its master holds.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, type StoreJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('relocate');
// m1…m4 hold 8 stores (each machine 2 masters, replicas on the next two machines); m5 is declared and empty
const layout = Array.from({ length: 8 }, (_, i) => ({ name: `g${String(i + 1).padStart(2, '0')}`, master: `m${(i % 4) + 1}`, replica: `m${((i % 4) + 1 + Math.floor(i / 4)) % 4 + 1}` }));
const cluster = new NetnsCluster({ dir, id: 'g', storePrefix: 'g', machines: 5, stores: layout, slotPools: true, agentArgs: ['--disk-report-interval', '5s'] });
const USERS = ['ann', 'ben'];
const { stores, operation, expectAllOneMaster, expectReplicasMatch, expectNoLoss, loadTargets, waitAgentsConnected } = clusterChecks(cluster, USERS);

interface FanOutJson { target: number; before: { machine: string; fanOut: number; target: number; masters: number }[]; moves: unknown[] }
interface RebalanceJson { moves: unknown[]; balanced: boolean; after: Record<string, number> }

interface Watched { operation: OperationJson & { children: OperationJson[] }; samples: number; copies: string[]; paused: string[]; most: number; expectedPause: { longestMs: number; where: string }; timedOut?: boolean }

/**
 * Follows a relocation to its end with one long-lived admin client (a slotctl per sample takes seconds on a busy
 * host), every store sampled every 100 ms: two slots on two machines always, both serving unless a switchover of that
 * store runs (its moment with both stopped) or a move of its replica is at its create (a master promoted in place is
 * restarted to add its second sync channel: Cyrus cannot add it by a reload there), or one ended less than 3 s ago.
 */
async function followSampled(id: string, limitMs: number): Promise<Watched> {
  const driver = cluster.operationDriver();
  const w = await driver.run<Watched>({ watch: id, limitMs }).finally(() => driver.close());
  expect(w.timedOut, `${id} still running after ${limitMs / 1000} s: ${w.operation.step}, ${w.operation.waiting}`).toBeUndefined();
  expect(w.copies, 'samples with a store below two copies').toEqual([]);
  expect(w.paused, 'stores not serving outside a switchover').toEqual([]);
  // a switchover or a master's restart for its second channel is seconds, not a minute
  expect(w.expectedPause.longestMs, `the longest pause (${w.expectedPause.where})`).toBeLessThan(60_000);
  return w;
}

const holds = (all: StoreJson[], machine: string) => all.filter((s) => s.master.machine === machine || s.replica.machine === machine).map((s) => s.name);

useCluster(cluster, dir, 'g');

describe('filling a new machine and emptying an old one', () => {
  it('machine add m5 --apply moves replicas to it and gives it masters until balance and fan-out are reached; machine evacuate m1 leaves m1 empty; under load, never one copy, nothing lost', async () => {
    await waitAgentsConnected();
    const all = await stores();
    expect(holds(all, 'm5')).toEqual([]);
    for (const user of USERS) await cluster.mail('deliver', all.map((x) => ({ host: x.serviceIp, user, subject: `first ${x.name}` })));
    await cluster.mail('bulk', [{ host: all[0]!.serviceIp, users: USERS, count: 100, subject: 'before' }]);

    // the plan names what moves; --apply runs that plan
    const plan = await cluster.slotctlJson<{ replicaMoves: { store: string; to: string }[]; switchovers: { store: string; to: string }[]; sentence: string }>(['machine', 'add', 'm5']);
    console.log(`machine add m5: ${plan.sentence}`);
    expect(plan.replicaMoves.length).toBeGreaterThan(0);
    expect(plan.switchovers.length).toBeGreaterThan(0);

    const load = cluster.startLoad('load-relocate', loadTargets(all), 25);
    await sleep(2000);
    let t = Date.now();
    const add = await cluster.slotctlJson<{ operation: OperationJson }>(['machine', 'add', 'm5', '--apply', '--no-wait']);
    const added = await followSampled(add.operation.id, 480_000);
    console.log(`machine add m5 under load: ${added.operation.state} in ${Date.now() - t} ms, ${plan.replicaMoves.length} move(s) + ${plan.switchovers.length} switchover(s), ${added.samples} samples of every store, at most ${added.most} children at once; longest pause inside a switchover or a move's create ${added.expectedPause.longestMs} ms (${added.expectedPause.where})`);
    expect(`${added.operation.state} ${added.operation.error}`).toBe('succeeded ');
    expect(added.operation.children.map((c) => `${c.kind} ${c.store} ${c.state}`).sort()).toEqual(
      [...plan.replicaMoves.map((m) => `move-replica ${m.store} succeeded`), ...plan.switchovers.map((m) => `switchover ${m.store} succeeded`)].sort(),
    );
    // balance and fan-out reached: nothing left for either plan to do
    const afterAdd = await stores();
    expect(holds(afterAdd, 'm5').length).toBe(plan.replicaMoves.length);
    const rebalance = await cluster.slotctlJson<RebalanceJson>(['plan', 'rebalance']);
    expect(rebalance.moves, JSON.stringify(rebalance.after)).toEqual([]);
    expect(rebalance.after.m5).toBeGreaterThan(0);
    const fanout = await cluster.slotctlJson<FanOutJson>(['plan', 'fanout']);
    for (const m of fanout.before) expect(`${m.machine} ${m.fanOut}`, `${m.machine}'s fan-out`).toBe(`${m.machine} ${Math.max(m.fanOut, m.target)}`);

    // evacuate m1: its masters switched away, then every replica on it moved
    const dry = await cluster.slotctlJson<{ switchovers: unknown[]; replicaMoves: unknown[]; unplaced: unknown[] }>(['machine', 'evacuate', 'm1', '--dry-run']);
    expect(dry.unplaced).toEqual([]);
    expect(dry.replicaMoves.length).toBe(holds(afterAdd, 'm1').length);
    t = Date.now();
    const ev = await cluster.slotctlJson<{ operation: OperationJson }>(['machine', 'evacuate', 'm1', '--no-wait']);
    const evacuated = await followSampled(ev.operation.id, 480_000);
    console.log(`machine evacuate m1 under load: ${evacuated.operation.state} in ${Date.now() - t} ms, ${dry.switchovers.length} switchover(s) + ${dry.replicaMoves.length} move(s), ${evacuated.samples} samples of every store, at most ${evacuated.most} children at once; longest pause inside a switchover or a move's create ${evacuated.expectedPause.longestMs} ms (${evacuated.expectedPause.where})`);
    expect(`${evacuated.operation.state} ${evacuated.operation.error}`).toBe('succeeded ');
    expect(evacuated.most).toBeLessThanOrEqual(2); // --parallel 2
    const final = await stores();
    expect(holds(final, 'm1')).toEqual([]);
    expect((await cluster.slots()).filter((s) => s.machine === 'm1')).toEqual([]);
    // m1 is left drained: nothing comes back to it until an undrain
    expect((await cluster.slotctlJson<{ name: string; drained: boolean }[]>(['machine', 'list'])).find((m) => m.name === 'm1')?.drained).toBe(true);

    await sleep(2000);
    const summary = await load.stop();
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight, `still queued or being delivered: ${JSON.stringify(summary.inFlightByStore)}`).toBe(0);
    await expectAllOneMaster();
    expect(await expectNoLoss(load.out, final.map((s) => s.name))).toBe(summary.acked);
    await expectReplicasMatch(final, { timeoutMs: 60_000 });
  }, 1_200_000);
});
