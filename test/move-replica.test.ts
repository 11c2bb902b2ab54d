// Replica moves between live machines on a namespace cluster, real Cyrus, real mail under load (issue 22): a store's
// replica moves to a third machine while 25 msg/s are delivered to every store — no acknowledged message lost, the
// new replica holds what the master holds (every folder: Message-IDs, flags, bytes), the old replica slot stopped
// with its address released and its files kept, the master never restarted (reloaded: a second replication channel,
// then the switch). Then a second move with the coordinator killed at every one of its steps, a cancel before the
// switch (the new slot abandoned), and the refusals.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { waitFor } from '../tools/local-cluster.js';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, type StoreJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('move-replica');
const cluster = new NetnsCluster({ dir, id: 'v', storePrefix: 'v', machines: 4, slotsPerMachine: 4, agentArgs: ['--disk-report-interval', '5s'], coordinatorArgs: ['--max-seeds', '1'] });
const USERS = ['ann', 'ben'];
const { stores, store, operation, ended, expectOneMaster, expectReplicasMatch, expectNoLoss, loadTargets, waitAgentsConnected } = clusterChecks(cluster, USERS);

/** An address of the cluster's subnet no slot uses (slots are on .2.x and .4.x, service addresses on .3.x). */
const newIp = (n: number) => `10.231.6.${n}`;

/** A machine that holds neither slot of the store. */
const thirdMachine = (s: StoreJson) => cluster.machines.find((m) => m !== s.master.machine && m !== s.replica.machine)!;

/** The addresses bound on a machine's interface. */
async function boundOn(machine: string): Promise<string[]> {
  const out = await cluster.exec(machine, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']);
  return out.stdout.split('\n').map((l) => l.split(/\s+/)[3]?.split('/')[0] ?? '').filter(Boolean);
}

/** Starts a move ('' for `ip`: the target's slot_ips give it). */
async function move(s: StoreJson, to: string, ip: string, extra: string[] = []): Promise<OperationJson> {
  const started = await cluster.slotctl(['store', 'move-replica', s.name, '--to', to, ...(ip ? ['--ip', ip] : []), '--no-wait', '--json', ...extra]);
  expect(started.exitCode, started.stderr).toBe(0);
  return JSON.parse(started.stdout) as OperationJson;
}

useCluster(cluster, dir, 'v');

describe('moving a replica between live machines', () => {
  it('moves a replica under load: nothing lost, the new replica holds what the master holds, the old one stopped and its address released', async () => {
    await waitAgentsConnected();
    const all = await stores();
    const s = all[0]!;
    const to = thirdMachine(s);
    for (const user of USERS) await cluster.mail('deliver', all.map((x) => ({ host: x.serviceIp, user, subject: `first ${x.name}` })));
    await cluster.mail('bulk', [{ host: s.serviceIp, users: USERS, count: 200, subject: `before ${s.name}` }]);
    await cluster.mail('file', [{ host: s.serviceIp, user: 'ann', folder: 'Projects', subject: 'plan' }]);
    const masterPid = s.master.pid;

    // the dry run names the steps and changes nothing
    const dry = await cluster.slotctlJson<{ wouldRun: boolean; problems: string[]; plan: string[] }>(['store', 'move-replica', s.name, '--to', to, '--ip', newIp(1), '--dry-run']);
    expect(dry.problems).toEqual([]);
    expect(dry.plan.length).toBeGreaterThanOrEqual(5);

    const load = cluster.startLoad('load-move', loadTargets(all), 25);
    await sleep(2000);
    const startedAt = Date.now();
    const op = await move(s, to, newIp(1));
    // sampled during the move: the store always has its master and a replica serving (never one copy)
    let samples = 0;
    let done: OperationJson | undefined;
    while (!done) {
      const now = await store(s.name);
      expect(now.master.state, `${s.name}'s master during the move`).toBe('SERVING');
      expect(now.replica.state, `${s.name}'s replica during the move (${now.replica.name})`).toBe('SERVING');
      samples++;
      const o = await operation(op.id);
      if (o.state !== 'running') done = o;
      else if (Date.now() - startedAt > 240_000) throw new Error(`move ${op.id} still running after 240 s: ${o.step}, ${o.waiting}`);
      else await sleep(300);
    }
    console.log(`move-replica ${s.name} -> ${to} under load: ${done.state} in ${Date.now() - startedAt} ms, ${samples} samples with master and replica serving`);
    expect(`${done.state} ${done.error}`).toBe('succeeded ');
    // each step once, in order (a comparison repeats its step while mail arrives)
    expect(done.steps.map((x) => x.step).filter((x, i, a) => x !== a[i - 1])).toEqual(['started', 'create', 'seed', 'verify', 'switch', 'catch-up', 'confirm', 'done']);
    const comparisons = done.steps.filter((x) => x.reason.startsWith('checking again')).length;
    console.log(`comparisons repeated ${comparisons} time(s)`);
    await sleep(2000);
    const summary = await load.stop();
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight, `still queued or being delivered: ${JSON.stringify(summary.inFlightByStore)}`).toBe(0);

    // the replica is the new slot on the target, with its own address; the master kept running
    const after = await expectOneMaster(s.name);
    expect(after.replica.machine).toBe(to);
    expect(after.replica.ip).toBe(newIp(1));
    expect(after.master.pid, `${s.name}'s master restarted`).toBe(masterPid);
    // no acknowledged message lost anywhere, every store's replica the same as its master (folders, Message-IDs, flags)
    expect(await expectNoLoss(load.out, all.map((x) => x.name))).toBe(summary.acked);
    expect(await cluster.mail<string[][]>('folder', [{ host: after.replica.ip, user: 'ann', folder: 'Projects' }])).toEqual([['plan']]);

    // the old replica slot left the cluster: stopped, its address released on its machine, its files kept
    const slots = await cluster.slots();
    expect(slots.map((x) => x.name)).not.toContain(s.replica.name);
    await waitFor(`${s.replica.ip} released on ${s.replica.machine}`, async () => (!(await boundOn(s.replica.machine)).includes(s.replica.ip) ? true : undefined), 30_000, 500);
    expect(existsSync(cluster.partitionPath(s.replica.machine, s.name, 'data')), 'the old replica\'s files').toBe(true);
    const procs = await cluster.exec(s.replica.machine, ['pgrep', '-f', `${cluster.partitionPath(s.replica.machine, s.name, 'meta')}/etc/imapd.conf`]);
    expect(procs.stdout.trim(), `processes of the old replica ${s.replica.name}`).toBe('');

    // replication goes on to the new replica
    await cluster.mail('deliver', [{ host: s.serviceIp, user: 'ben', subject: 'after the move' }]);
    await waitFor('mail delivered after the move to reach the new replica', async () => ((await cluster.mail<string[][]>('subjects', [{ host: after.replica.ip, user: 'ben' }]))[0]!.includes('after the move') ? true : undefined), 30_000, 500);
  }, 600_000);

  it('resumes after the coordinator is killed at every step of a move', async () => {
    const all = await stores();
    const s = all[1]!;
    const to = thirdMachine(s);
    await cluster.mail('bulk', [{ host: s.serviceIp, users: USERS, count: 50, subject: `crash ${s.name}` }]);
    // each start of the coordinator dies at the next step, alternately before and after its action
    const crashes = ['move-create:before', 'move-seed:after', 'move-verify:before', 'move-switch:before', 'move-catch-up:after', 'move-confirm:before', 'move-done:before'];
    await cluster.stopCoordinator();
    await cluster.startCoordinator({ SLOTCTL_TEST_CRASH_AT: crashes[0]! });
    await waitAgentsConnected();
    // a coordinator just started refuses moves for a few seconds (agents reconnecting); this one dies at the create,
    // perhaps before it answers
    let started: { exitCode?: number; stdout: string; stderr: string } = { stdout: '', stderr: '' };
    await waitFor('the move to be accepted', async () => {
      started = await cluster.slotctl(['store', 'move-replica', s.name, '--to', to, '--ip', newIp(2), '--no-wait', '--json']);
      if (started.exitCode === 0 || cluster.coordinatorProcess?.exited) return true;
      if (/moments ago/.test(started.stderr)) return undefined;
      throw new Error(`the move was refused: ${started.stderr}`);
    }, 30_000, 500);
    const died: string[] = [];
    for (const [i, at] of crashes.entries()) {
      await waitFor(`the coordinator to kill itself at ${at}`, () => (cluster.coordinatorProcess?.exited ? true : undefined), 120_000, 100);
      died.push(at);
      // one that is to die may do so before it answers
      if (crashes[i + 1]) await cluster.startCoordinator({ SLOTCTL_TEST_CRASH_AT: crashes[i + 1]! }, { answer: false });
      else await cluster.startCoordinator();
    }
    expect(died).toEqual(crashes);
    await waitAgentsConnected();
    const op = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all', '--store', s.name])).find((o) => o.kind === 'move-replica')!;
    expect(op, `the move of ${s.name} (started: ${started.stdout || started.stderr})`).toBeDefined();
    const done = await ended(op.id, 'the resumed move to end', 180_000);
    expect(`${done.state} ${done.error}`).toBe('succeeded ');
    const after = await expectOneMaster(s.name);
    expect(after.replica.machine).toBe(to);
    await expectReplicasMatch([after], { users: USERS });
  }, 600_000);

  it('abandons the new slot when cancelled before the switch; the old replica stays', async () => {
    const all = await stores();
    const s = all[2]!;
    const to = thirdMachine(s);
    // held before its switch, for certain: the coordinator dies as the move enters verify; meanwhile the new slot's
    // sync port refuses and mail arrives, so once the coordinator is back the new slot stays behind the master
    await cluster.stopCoordinator();
    await cluster.startCoordinator({ SLOTCTL_TEST_CRASH_AT: 'move-verify:before' });
    await waitAgentsConnected();
    await cluster.slotctl(['store', 'move-replica', s.name, '--to', to, '--ip', newIp(3), '--no-wait', '--json']);
    await waitFor('the coordinator to die as the move enters verify', () => (cluster.coordinatorProcess?.exited ? true : undefined), 60_000, 100);
    await cluster.blockSync(to);
    try {
      await cluster.mail('deliver', [{ host: s.serviceIp, user: 'ann', subject: 'while the new slot is cut off' }]);
      await cluster.startCoordinator();
      await waitAgentsConnected();
      const op = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all', '--store', s.name])).find((o) => o.kind === 'move-replica')!;
      await waitFor('the comparison to find the new slot behind', async () => (/behind the master|missing on the new slot/.test((await operation(op.id)).waiting) ? true : undefined), 60_000, 500);
      const cancel = await cluster.slotctl(['operations', 'cancel', op.id]);
      expect(cancel.exitCode, cancel.stderr).toBe(0);
      const done = await ended(op.id, 'the cancelled move to end', 60_000);
      expect(done.state).toBe('cancelled');
      expect(done.steps.map((x) => x.step)).toContain('abandon');
    } finally {
      await cluster.unblockSync(to);
    }
    const after = await expectOneMaster(s.name);
    expect(after.replica.name).toBe(s.replica.name);
    expect((await cluster.slots()).map((x) => x.name)).not.toContain(`${s.name}-${to}`);
    await waitFor(`${newIp(3)} released on ${to}`, async () => (!(await boundOn(to)).includes(newIp(3)) ? true : undefined), 30_000, 500);
    await cluster.mail('deliver', [{ host: s.serviceIp, user: 'ann', subject: 'after the cancel' }]);
    await expectReplicasMatch([after], { users: ['ann'], timeoutMs: 30_000 });
  }, 300_000);

  it('copies one store at a time with --max-seeds 1: three moves asked at once, never two copying together; addresses from the machines\' slot_ips', async () => {
    const all = await stores();
    const list = all.slice(4, 7);
    // no --ip and no pool: refused, saying how to give one
    const none = await cluster.slotctl(['store', 'move-replica', list[0]!.name, '--to', thirdMachine(list[0]!), '--dry-run', '--json']);
    expect(none.exitCode).toBe(1);
    expect(JSON.parse(none.stdout).problems.join('; ')).toMatch(/needs an address of its own: give one with --ip, or declare addresses for new slots on m\d in the cluster file \(slot_ips/);
    // each machine gets a pool of its own (10.231.6.10x for m1, .11x for m2, …), applied from the cluster as it is now
    const now = parse((await cluster.slotctl(['cluster', 'export'])).stdout) as { machines: { name: string }[] };
    const pools = { ...now, machines: now.machines.map((m) => ({ ...m, slot_ips: [`10.231.6.${100 + Number(m.name.slice(1)) * 10}-10.231.6.${109 + Number(m.name.slice(1)) * 10}`] })) };
    const applied = await cluster.slotctl(['cluster', 'apply', '-'], JSON.stringify(pools));
    expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0);
    // started back to back by one admin client and polled every 10 ms (a slotctl per call takes seconds on a busy host)
    const driver = cluster.operationDriver();
    const run = await driver.run<{ ids: string[]; said: string[]; most: number }>({ moves: list.map((s) => ({ store: s.name, to: thirdMachine(s) })) }).finally(() => driver.close());
    const ops = await Promise.all(run.ids.map((id) => operation(id)));
    for (const o of ops) expect(`${o.store}: ${o.state} ${o.error}`).toBe(`${o.store}: succeeded `);
    const most = run.most;
    const waited = run.said.find((w) => /no free seed slot/.test(w)) ?? '';
    // and from the operations' own records: each one's copy (create → switch) never overlaps another's
    const spans = await Promise.all(ops.map(async (o) => {
      const steps = (await operation(o.id)).steps;
      const at = (step: string) => Date.parse(steps.find((x) => x.step === step)!.at);
      return { id: o.id, from: at('create'), to: at('switch') };
    }));
    spans.sort((a, b) => a.from - b.from);
    // all three were asked for before the first one switched: the limit, not the order of the requests, kept them apart
    for (const o of ops) expect(Date.parse(o.createdAt), `${o.id} asked for`).toBeLessThan(spans[0]!.to);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.from, `${spans[i]!.id} began copying before ${spans[i - 1]!.id} switched`).toBeGreaterThanOrEqual(spans[i - 1]!.to);
    // each new replica took an address of its machine's pool
    const moved = (await stores()).filter((x) => list.some((s) => s.name === x.name));
    for (const x of moved) expect(x.replica.ip, `${x.name}'s new replica on ${x.replica.machine}`).toMatch(new RegExp(`^10\\.231\\.6\\.1${x.replica.machine.slice(1)}\\d$`));
    expect(new Set(moved.map((x) => x.replica.ip)).size).toBe(moved.length);
    console.log(`seed limit: at most ${most} copying at once (sampled every 10 ms); copies ${spans.map((s) => `${s.to - s.from} ms`).join(', ')}, one after another; a waiting one said: ${waited}`);
    expect(most).toBe(1);
    expect(waited).toMatch(/limit 1: --max-seeds/);
  }, 300_000);

  it('refuses a move the target cannot take, naming why: its own machines, an address in use, a drained target, a partition over the warning threshold, one the store\'s copy would take over it', async () => {
    await waitAgentsConnected();
    const all = await stores();
    const s = all[3]!;
    // (last: the drain below promotes masters in place, after which a move restarts them — the Cyrus SIGHUP limit)
    const to = thirdMachine(s);
    const problems = async (args: string[]) => {
      const r = await cluster.slotctl(['store', 'move-replica', s.name, ...args, '--dry-run', '--json']);
      expect(r.exitCode, r.stderr).toBe(1);
      return (JSON.parse(r.stdout) as { problems: string[] }).problems.join('; ');
    };
    expect(await problems(['--to', s.master.machine, '--ip', newIp(9)])).toMatch(/holds the master/);
    expect(await problems(['--to', s.replica.machine, '--ip', newIp(9)])).toMatch(/already holds the replica/);
    expect(await problems(['--to', to, '--ip', s.master.ip])).toMatch(/address 10\.231\.2\.\d+ is in use \(/);
    const unknown = await cluster.slotctl(['store', 'move-replica', 'nosuch', '--to', to, '--ip', newIp(9)]);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/store "nosuch" is not in the cluster/);

    // a partition over the warning threshold on the target: the agents' own measurement (every 5 s here) against the
    // cluster's threshold, lowered to 1 % (any used disk is over it), then set back
    // (the cluster as the database holds it now: the moves above made the first file stale)
    const now = parse((await cluster.slotctl(['cluster', 'export'])).stdout) as Record<string, unknown>;
    const withWarn = (warn: number) => JSON.stringify({ ...now, cleanup: { ...(now.cleanup as object | undefined), warn, critical: 99 } });
    expect((await cluster.slotctl(['cluster', 'apply', '-'], withWarn(1))).exitCode).toBe(0);
    try {
      const said = await waitFor('the refusal to name the full disk', async () => {
        const p = await cluster.slotctl(['store', 'move-replica', s.name, '--to', to, '--ip', newIp(9), '--dry-run', '--json']);
        const text = (JSON.parse(p.stdout) as { problems: string[] }).problems.join('; ');
        return /disk d0 on .* is \d+% full/.test(text) ? text : undefined;
      }, 30_000, 1000);
      expect(said).toMatch(new RegExp(`disk d0 on ${to} is \\d+% full \\((bytes|inodes); the warning threshold is 1%\\)`));
    } finally {
      expect((await cluster.slotctl(['cluster', 'apply', '-'], withWarn(80))).exitCode).toBe(0);
    }
    const ok = await cluster.slotctlJson<{ problems: string[] }>(['store', 'move-replica', s.name, '--to', to, '--ip', newIp(9), '--dry-run']);
    expect(ok.problems).toEqual([]);

    // a disk under the threshold that the store's copy would take over it: its measured size plus the cluster file's
    // expected growth for it (1 PB: more than any test disk), then the growth taken back
    const grown = { ...now, stores: (now.stores as { name: string }[]).map((x) => (x.name === s.name ? { ...x, expected_growth: '1PB' } : x)) };
    expect((await cluster.slotctl(['cluster', 'apply', '-'], JSON.stringify(grown))).exitCode).toBe(0);
    try {
      expect(await problems(['--to', to, '--ip', newIp(9)])).toMatch(new RegExp(`disk d0 on ${to} would be \\d+% full with the store's copy \\(bytes: .* measured with 1000000\\.0 GB expected growth and 20% headroom; the warning threshold is 80%\\)`));
    } finally {
      expect((await cluster.slotctl(['cluster', 'apply', '-'], JSON.stringify(now))).exitCode).toBe(0);
    }

    // a drained target (its masters moved away first), then undrained
    const drain = await cluster.slotctl(['machine', 'drain', to]);
    expect(drain.exitCode, drain.stdout + drain.stderr).toBe(0);
    try {
      expect(await problems(['--to', to, '--ip', newIp(9)])).toMatch(new RegExp(`machine ${to} is drained`));
    } finally {
      expect((await cluster.slotctl(['machine', 'undrain', to])).exitCode).toBe(0);
    }
  }, 300_000);
});
