// slotctl as an operator and a script use it: --help on every verb, --json that parses, exit codes that mean
// what the help says (0 ok, 1 error, 2 usage, 3 not healthy), and a clear message when the coordinator is away.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, LocalCluster, freePort, waitFor } from '../tools/local-cluster.js';
import { join } from 'node:path';
import { HARNESS_OPERATOR, ensureCertificates } from '../tools/test-pki.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { imapClient } from './support/mail.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('cli');
const cluster = new LocalCluster({ dir });
const READER = { role: 'reader', name: 'rita' } as const;
const OPERATOR = { role: 'operator', name: 'alice' } as const;

beforeAll(async () => {
  await cluster.startCoordinator();
  expect((await cluster.slotctl(['cluster', 'apply', '-'], twoMachineCluster(dir, NET, PREFIX))).exitCode).toBe(0);
  cluster.startAgent('m1');
  cluster.startAgent('m2');
  // an agent process took 13-16 s before it connected on a busy host (2 cores, other tests, busy loops)
  await cluster.waitForMachines('up', ['m1', 'm2'], 45_000);
}, 120_000);

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

const slotctl = (args: string[], env: Record<string, string> = {}) => execa('node', [BIN.slotctl, ...cluster.tlsArgs(HARNESS_OPERATOR), ...args], { reject: false, env });

// Each slotctl is a node process of its own: 0.5 s of CPU, 7-12 s to run on a busy host (2 cores, other tests, busy
// loops), and a test here runs up to 15 of them (the switchover test took 48 s, and 60 s once).
describe('slotctl', { timeout: 180_000 }, () => {
  it.each([
    [['--help'], /Usage: slotctl \[options\] \[command\][\s\S]*Exit codes: 0 ok, 1 error, 2 usage, 3 cluster not healthy/],
    [['status', '--help'], /Usage: slotctl status[\s\S]*Exits 3 when the\s+cluster is not healthy[\s\S]*--json/],
    [['machine', 'list', '--help'], /Usage: slotctl machine list[\s\S]*--json/],
    [['store', 'list', '--help'], /Usage: slotctl store list[\s\S]*--json/],
    [['events', '--help'], /Usage: slotctl events[\s\S]*--since <when>[\s\S]*--store <store>[\s\S]*--json/],
    [['cluster', 'apply', '--help'], /Usage: slotctl cluster apply[\s\S]*--dry-run[\s\S]*--prune/],
    [['slot', 'list', '--help'], /Usage: slotctl slot list[\s\S]*--machine[\s\S]*--json/],
    [['slot', 'show', '--help'], /Usage: slotctl slot show[\s\S]*recent Cyrus log[\s\S]*--json/],
    [['slot', 'logs', '--help'], /Usage: slotctl slot logs[\s\S]*--lines/],
    [['slot', 'stop', '--help'], /Usage: slotctl slot stop[\s\S]*--reason/],
    [['slot', 'replay', '--help'], /Usage: slotctl slot replay[\s\S]*must be stopped[\s\S]*--wait[\s\S]*--timeout/],
    [['store', 'switchover', '--help'], /Usage: slotctl store switchover[\s\S]*replay its leftover[\s\S]*rolls\s+back[\s\S]*--wait[\s\S]*--timeout[\s\S]*--dry-run[\s\S]*--json/],
    [['machine', 'drain', '--help'], /Usage: slotctl machine drain[\s\S]*marked drained[\s\S]*--parallel[\s\S]*--no-wait[\s\S]*--dry-run/],
    [['machine', 'undrain', '--help'], /Usage: slotctl machine undrain[\s\S]*Moves nothing back/],
    [['operations', '--help'], /Usage: slotctl operations[\s\S]*resumes them[\s\S]*list[\s\S]*show[\s\S]*cancel/],
    [['operations', 'list', '--help'], /Usage: slotctl operations list[\s\S]*--all[\s\S]*--json/],
    [['operations', 'show', '--help'], /Usage: slotctl operations show[\s\S]*every step[\s\S]*--wait/],
    [['operations', 'cancel', '--help'], /Usage: slotctl operations cancel[\s\S]*safe point and roll back/],
    [['machine', 'failover', '--help'], /Usage: slotctl machine failover[\s\S]*at\s+risk[\s\S]*--force[\s\S]*--dry-run[\s\S]*--json/],
    [['store', 'at-risk', '--help'], /Usage: slotctl store at-risk[\s\S]*oldest\s+change[\s\S]*--all[\s\S]*--json/],
    [['store', 'recover', '--help'], /Usage: slotctl store recover[\s\S]*sync_client\s+-m[\s\S]*GUID[\s\S]*--dry-run[\s\S]*--json/],
    [['machine', 'recover', '--help'], /Usage: slotctl machine recover[\s\S]*open\s+at-risk\s+record[\s\S]*--dry-run/],
    [['plan', '--help'], /Usage: slotctl plan[\s\S]*layout[\s\S]*whatif[\s\S]*rebalance/],
    [['plan', 'layout', '--help'], /Usage: slotctl plan layout[\s\S]*different racks[\s\S]*--machines <file>[\s\S]*--count[\s\S]*--json/],
    [['plan', 'whatif', '--help'], /Usage: slotctl plan whatif[\s\S]*stores lost entirely[\s\S]*--lose <machines>[\s\S]*--json/],
    [['plan', 'rebalance', '--help'], /Usage: slotctl plan rebalance[\s\S]*fewest switchovers[\s\S]*--apply[\s\S]*--parallel[\s\S]*--json/],
    [['machine', 'add', '--help'], /Usage: slotctl machine add[\s\S]*fan-out[\s\S]*--slots[\s\S]*--rack[\s\S]*--disk[\s\S]*--json/],
    [['cleanup', '--help'], /Usage: slotctl cleanup[\s\S]*cyr_expire on masters and replicas alike[\s\S]*status[\s\S]*run/],
    [['cleanup', 'status', '--help'], /Usage: slotctl cleanup status[\s\S]*last run[\s\S]*--machine[\s\S]*--json/],
    [['cleanup', 'run', '--help'], /Usage: slotctl cleanup run[\s\S]*sharing\s+a disk never run together[\s\S]*--slot[\s\S]*--machine[\s\S]*--wait/],
    [['disk', 'status', '--help'], /Usage: slotctl disk status[\s\S]*inodes[\s\S]*expunged[\s\S]*--json/],
    [['machine', 'retire', '--help'], /Usage: slotctl machine retire[\s\S]*sync_client\s+-u[\s\S]*--dry-run[\s\S]*--json/],
  ])('explains itself: slotctl %j', async (args, pattern) => {
    const result = await slotctl(args);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(pattern);
  });

  it('prints JSON that parses for every read verb', async () => {
    const status = JSON.parse((await cluster.slotctl(['status', '--json'])).stdout) as { machines: { name: string; state: string }[]; stores: unknown[]; healthy: boolean };
    expect(status.machines.map((m) => [m.name, m.state])).toEqual([['m1', 'up'], ['m2', 'up']]);
    expect(status.stores).toHaveLength(2);
    const machines = JSON.parse((await cluster.slotctl(['machine', 'list', '--json'])).stdout) as { name: string; connected: boolean }[];
    expect(machines.map((m) => m.connected)).toEqual([true, true]);
    const stores = JSON.parse((await cluster.slotctl(['store', 'list', '--json'])).stdout) as { name: string; epoch: number; master: { name: string } }[];
    expect(stores.map((s) => [s.name, s.epoch, s.master.name])).toEqual([['cl01', 1, 'cl01-m1'], ['cl02', 1, 'cl02-m2']]);
    const events = JSON.parse((await cluster.slotctl(['events', '--json', '--since', '1h', '--store', 'cl01'])).stdout) as { kind: string; store: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.store === 'cl01')).toBe(true);
    const slots = JSON.parse((await cluster.slotctl(['slot', 'list', '--json'])).stdout) as { name: string; state: string }[];
    expect(slots.map((s) => s.name)).toEqual(['cl01-m1', 'cl01-m2', 'cl02-m1', 'cl02-m2']);
    const one = JSON.parse((await cluster.slotctl(['slot', 'show', 'cl01-m1', '--json'])).stdout) as { desiredRole: string; recentLog: string[] };
    expect(one.desiredRole).toBe('MASTER');
  });

  it('shows machines and stores as tables; exits 0 when healthy and 3 with the problem first when not', async () => {
    await waitFor('a healthy cluster', async () => ((await cluster.slotctl(['status'])).exitCode === 0 ? true : undefined), 30_000, 200);
    const healthy = await cluster.slotctl(['status']);
    expect(healthy.stdout.split('\n')[0]).toMatch(/^cluster HEALTHY — machines 2\/2 up, stores 2\/2 ok/);
    expect(healthy.stdout).toMatch(new RegExp(`│ m1\\s+│ 127\\.${NET}\\.0\\.1 │ up`));
    expect(healthy.stdout).toMatch(new RegExp(`│ cl01\\s+│ ok\\s+│ 1\\s+│ 127\\.${NET}\\.3\\.1 │ cl01-m1@m1 serving │ cl01-m2@m2 serving`));

    const stop = await cluster.slotctl(['slot', 'stop', 'cl02-m1', '--reason', 'cli test']);
    expect(stop.exitCode, stop.stderr).toBe(0);
    await waitFor('the stopped replica to show', async () => ((await cluster.slotctl(['status'])).exitCode === 3 ? true : undefined), 30_000, 200);
    const unhealthy = await cluster.slotctl(['status']);
    const lines = unhealthy.stdout.split('\n');
    expect(lines[0]).toMatch(/^cluster NOT HEALTHY — machines 2\/2 up, stores 1\/2 ok/);
    expect(lines[2]).toMatch(/^problems \(1, worst first\):/);
    expect(lines[3]).toMatch(/store cl02: replica slot cl02-m1 on m1 is stopped by an operator \(slotctl slot start cl02-m1\)/);
    await waitFor('the replica to stop', async () => ((await cluster.client().listSlots({ machine: 'm1' })).slots.find((s) => s.name === 'cl02-m1')?.state === 'STOPPED' ? true : undefined), 30_000);

    expect((await cluster.slotctl(['slot', 'start', 'cl02-m1'])).exitCode).toBe(0);
    await waitFor('a healthy cluster again', async () => ((await cluster.slotctl(['status'])).exitCode === 0 ? true : undefined), 30_000, 200);
    const events = (await cluster.client().listEvents({ store: 'cl02', limit: 20 })).events.map((e) => e.kind);
    expect(events).toEqual(expect.arrayContaining(['slot.stop-requested', 'slot.start-requested']));
  });

  it('shows one slot with its recent Cyrus log', async () => {
    const show = await cluster.slotctl(['slot', 'show', 'cl01-m1']);
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/slot cl01-m1 on m1, store cl01/);
    expect(show.stdout).toMatch(/role\s+master \(epoch 1\)/);
    expect(show.stdout).toMatch(/state\s+serving, cyrmaster pid \d+/);
    // Wait for a line of this run: a fresh cyrmaster writes no line of its own ('process started' is a debug line),
    // and slot log files outlive a run (an earlier run's 'master[…]: … shutdown' lines passed this on a host that had
    // run it before, and nothing came on a fresh one). imapd logs every login with the user's name.
    const user = `logcheck${Date.now()}`;
    const client = imapClient(`127.${NET}.1.1`, user);
    await client.connect();
    await client.logout();
    const login = new RegExp(`^\\S+ notice imap\\[\\d+\\]: login: .* ${user} .*User logged in`, 'm');
    // polled in-process (a slotctl process per look took seconds to start on a busy host), then shown by slotctl
    await waitFor('the login to be reported', async () => ((await cluster.slot('cl01-m1')).recentLog.some((l) => login.test(l)) ? true : undefined), 15_000, 200);
    expect((await cluster.slotctl(['slot', 'logs', 'cl01-m1'])).stdout).toMatch(login);
    expect((await cluster.slotctl(['slot', 'show', 'cl01-m1'])).stdout).toMatch(new RegExp(`recent log:[\\s\\S]*login: .* ${user} `));
    const missing = await cluster.slotctl(['slot', 'show', 'nope']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/no slot "nope"/);
  });

  it('exits 2 on a usage error and says what is wrong', async () => {
    const unknown = await slotctl(['frobnicate']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const missing = await slotctl(['cluster', 'apply']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toMatch(/missing required argument 'file'/);
  });

  it('exits 1 with a hint when the coordinator cannot be reached, from the flag or the environment', async () => {
    const port = await freePort();
    const flag = await slotctl(['--coordinator', `127.0.0.1:${port}`, '--rpc-timeout', '2s', 'status']);
    expect(flag.exitCode).toBe(1);
    expect(flag.stderr).toContain(`cannot reach the coordinator at 127.0.0.1:${port}`);
    expect(flag.stderr).toMatch(/hint: is slot-coordinator running there\?/);
    // no certificate: every call is mutual TLS, and the message says how to get one
    const none = await execa('node', [BIN.slotctl, '--coordinator', cluster.target, '--tls-dir', join(dir, 'no-certificates'), 'status'], { reject: false });
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/no certificate: cannot read the certificate directory .*no-certificates \(ENOENT\)\n  hint: every call is mutual TLS: ask your cluster's admin for a certificate \(slotctl pki issue operator NAME --role reader/);
    const env = await slotctl(['--rpc-timeout', '2s', 'machine', 'list'], { SLOTCTL_COORDINATOR: `127.0.0.1:${port}` });
    expect(env.exitCode).toBe(1);
    expect(env.stderr).toContain(`127.0.0.1:${port}`);
  });

  it('switches a store over and back, shows the operation, and refuses what cannot be done with a hint', async () => {
    const dry = await cluster.slotctl(['store', 'switchover', 'cl01', '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/preflight passes[\s\S]*5\. flip: cl01 master cl01-m1 -> cl01-m2 in one transaction, epoch 1 -> 2/);
    expect(JSON.parse((await cluster.slotctl(['store', 'list', '--json'])).stdout)[0].epoch).toBe(1); // a dry run changes nothing
    // roles: a reader may look (a dry run) but not switch over; an operator may, and the call is recorded as its own
    ensureCertificates(cluster.pkiDir, [READER, OPERATOR]);
    expect((await cluster.slotctl(['store', 'switchover', 'cl01', '--dry-run'], undefined, READER)).exitCode).toBe(0);
    const refused = await cluster.slotctl(['store', 'switchover', 'cl01'], undefined, READER);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/rita has role reader: Switchover needs role operator\n  hint: an admin issues a certificate with that role: slotctl pki issue operator rita --role operator/);
    const notAdmin = await cluster.slotctl(['cluster', 'apply', '-'], twoMachineCluster(dir, NET, PREFIX), OPERATOR);
    expect(notAdmin.exitCode).toBe(1);
    expect(notAdmin.stderr).toMatch(/alice has role operator: ApplyCluster needs role admin/);
    const run = await cluster.slotctl(['store', 'switchover', 'cl01', '--wait', '--json'], undefined, OPERATOR);
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string; operation?: { id: string; state: string } });
    expect(lines.filter((l) => l.type === 'step').map((l) => l.step)).toEqual(['started', 'catch-up', 'stop-master', 'replay', 'verify', 'flip', 'start', 'confirm', 'done']);
    const op = lines.at(-1)!.operation!;
    expect(op.state).toBe('succeeded');
    const shown = await cluster.slotctl(['operations', 'show', op.id]);
    expect(shown.stdout).toMatch(new RegExp(`operation ${op.id}: switchover of store cl01[\\s\\S]*state succeeded, step done[\\s\\S]*flip +replica holds everything`));
    expect((await cluster.slotctl(['operations', 'list'])).stdout).toMatch(new RegExp(`${op.id} .*switchover .*cl01 .*succeeded`));
    // the audit trail: alice's call, the operation it started with every step, and the refused attempts
    const mine = JSON.parse((await cluster.slotctl(['events', '--who', 'alice', '--json'])).stdout) as { kind: string; actor: string; op: string; reason: string }[];
    expect(mine.filter((e) => e.kind === 'admin.call').map((e) => e.reason)).toEqual(['alice (operator) called Switchover']);
    expect(mine.filter((e) => e.op === op.id).map((e) => e.kind)).toEqual(expect.arrayContaining(['operation.started', 'operation.step', 'operation.succeeded']));
    expect(mine.filter((e) => e.kind === 'admin.refused').map((e) => e.reason)).toEqual(['alice (operator) may not call ApplyCluster: needs role admin']);
    const rita = JSON.parse((await cluster.slotctl(['events', '--who', 'rita', '--json'])).stdout) as { kind: string }[];
    expect(rita.map((e) => e.kind)).toEqual(['admin.refused']); // her dry run changed nothing and is not recorded
    expect((await cluster.slotctl(['events', '--who', 'alice'])).stdout).toMatch(/admin\.call .*by=alice +alice \(operator\) called Switchover/);
    const back = await cluster.slotctl(['store', 'switchover', 'cl01', '--wait']);
    expect(back.stdout).toMatch(/switchover of cl01: succeeded in [\d.]+ s: cl01-m1 is master \(epoch 3\), cl01-m2 its replica/);
    const unknown = await cluster.slotctl(['store', 'switchover', 'nope']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toMatch(/store "nope" is not in the cluster\n  hint: list stores with `slotctl store list`/);
    const ended = await cluster.slotctl(['operations', 'cancel', op.id]);
    expect(ended.exitCode).toBe(1);
    expect(ended.stderr).toContain(`operation ${op.id} already ended (succeeded)`);
    expect((await cluster.slotctl(['operations', 'show', 'sw-nothing'])).stderr).toMatch(/operation "sw-nothing" does not exist/);
    expect((await cluster.slotctl(['machine', 'drain', 'm9'])).stderr).toMatch(/machine "m9" is not in the cluster/);
    const plan = await cluster.slotctl(['machine', 'drain', 'm1', '--dry-run']);
    expect(plan.stdout).toMatch(/drain of m1 \(dry run\): 1 store\(s\) would move\n  cl01: cl01-m1 \(m1\) -> cl01-m2 \(m2\)/);
  });

  it('plans placement on the live cluster: whatif, layout, machine add, and rebalance --apply after a switchover', async () => {
    const whatif = JSON.parse((await cluster.slotctl(['plan', 'whatif', '--lose', 'm1', '--json'])).stdout) as { promoted: number; lostStores: string[]; withoutReplica: string[]; worstIncrease: { machine: string; increase: number } };
    expect(whatif).toMatchObject({ promoted: 1, lostStores: [], withoutReplica: ['cl01', 'cl02'], worstIncrease: { machine: 'm2', increase: 1 } });
    const both = await cluster.slotctl(['plan', 'whatif', '--lose', 'm1,m2']);
    expect(both.exitCode).toBe(1); // stores would be lost
    expect(both.stdout).toMatch(/2 store\(s\) LOST until a machine returns/);
    expect((await cluster.slotctl(['plan', 'whatif', '--lose', 'm7'])).stderr).toMatch(/unknown machine\(s\): m7/);
    const layout = JSON.parse((await cluster.slotctl(['plan', 'layout', '--count', '2', '--prefix', 'cl', '--json'])).stdout) as { stores: { store: string; master: { machine: string }; replica: { machine: string } }[] };
    expect(layout.stores.map((s) => [s.store, s.master.machine, s.replica.machine]).sort()).toEqual([['cl03', 'm1', 'm2'], ['cl04', 'm2', 'm1']]);
    const add = await cluster.slotctl(['machine', 'add', 'm3', '--slots', '4', '--json']);
    expect(add.exitCode, add.stderr).toBe(0);
    expect((JSON.parse(add.stdout) as { machine: string; newStores: unknown[] }).newStores.length).toBeGreaterThan(0);

    expect(JSON.parse((await cluster.slotctl(['plan', 'rebalance', '--json'])).stdout)).toMatchObject({ moves: [], balanced: true });
    expect((await cluster.slotctl(['store', 'switchover', 'cl02', '--wait'])).exitCode).toBe(0);
    const preview = JSON.parse((await cluster.slotctl(['plan', 'rebalance', '--json'])).stdout) as { moves: { store: string; from: string; to: string }[] };
    expect(preview.moves).toEqual([expect.objectContaining({ from: 'm1', to: 'm2' })]);
    const applied = await cluster.slotctl(['plan', 'rebalance', '--apply']);
    expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/rebalance started: rb-[\s\S]*rebalance: succeeded in [\d.]+ s: 1 store\(s\) moved, 0 not moved/);
    const after = JSON.parse((await cluster.slotctl(['store', 'list', '--json'])).stdout) as { master: { machine: string } }[];
    expect(after.map((s) => s.master.machine).sort()).toEqual(['m1', 'm2']);
    expect((await cluster.slotctl(['plan', 'rebalance'])).stdout).toMatch(/already balanced/);
    // the status shows each machine's fan-out
    expect((await cluster.slotctl(['status'])).stdout).toMatch(/fan-out[\s\S]*1 \(m2\)[\s\S]*1 \(m1\)/);
    // retire refuses a machine that is up, saying what to do instead
    const retire = await cluster.slotctl(['machine', 'retire', 'm1', '--dry-run']);
    expect(retire.exitCode).toBe(1);
    expect(retire.stdout).toMatch(/machine m1 is up, not down: retire is for a machine that will not return/);
  });

  it('exits 1 on a bad value and names it', async () => {
    const result = await cluster.slotctl(['events', '--since', 'yesterday-ish']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/--since "yesterday-ish" is neither a duration/);
  });
});

describe('insecure mode', { timeout: 120_000 }, () => {
  it('exists only by name: status shows it first as a problem, and the agent refuses it with the ip driver', async () => {
    const insecureDir = join(dir, 'insecure');
    const plain = new LocalCluster({ dir: insecureDir, insecure: true });
    try {
      await plain.startCoordinator();
      const status = await plain.slotctl(['status']);
      expect(status.exitCode).toBe(3);
      expect(status.stdout).toMatch(/problems \(1, worst first\):\n\s+! the coordinator runs without TLS \(--insecure\): anyone who reaches its port can call every RPC/);
      // every call is the insecure caller's, and recorded as such
      expect((await plain.slotctl(['cluster', 'apply', '-'], `machines:\n  - { name: m1, address: 127.${NET}.9.1 }\n`)).exitCode).toBe(0);
      const calls = JSON.parse((await plain.slotctl(['events', '--who', 'insecure', '--json'])).stdout) as { kind: string; reason: string }[];
      expect(calls.map((e) => [e.kind, e.reason])).toEqual([
        ['cluster.machine-add', `cluster apply (stdin): address 127.${NET}.9.1, 0 disk(s)`],
        ['admin.call', 'insecure (admin) called ApplyCluster'],
      ]);
      // a TLS client does not fall back to the clear: it cannot talk to it
      const tls = await slotctl(['--coordinator', plain.target, '--rpc-timeout', '3s', 'status']);
      expect(tls.exitCode).toBe(1);
    } finally {
      await plain.stopAll();
    }
    const agent = await execa('node', [BIN.agent, '--machine', 'm1', '--coordinator', '127.0.0.1:1', '--state-dir', join(insecureDir, 'agent'), '--insecure', '--vip-driver', 'ip', '--vip-interface', 'lo'], { reject: false, timeout: 30_000 });
    expect(agent.exitCode).toBe(1);
    expect(agent.stderr + agent.stdout).toMatch(/--insecure is refused with --vip-driver ip: a real host's links must be mutual TLS/);
  });
});
