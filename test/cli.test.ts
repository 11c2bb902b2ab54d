// slotctl as an operator and a script use it: --help on every verb, --json that parses, exit codes that mean
// what the help says (0 ok, 1 error, 2 usage, 3 not healthy), and a clear message when the coordinator is away.
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, LocalCluster, freePort } from '../tools/local-cluster.js';
import { TWO_MACHINES, removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('cli');
const cluster = new LocalCluster({ dir });

beforeAll(async () => {
  await cluster.startCoordinator();
  expect((await cluster.slotctl(['cluster', 'apply', '-'], TWO_MACHINES)).exitCode).toBe(0);
  cluster.startAgent('m1');
  cluster.startAgent('m2');
  await cluster.waitForMachines('up', ['m1', 'm2']);
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

const slotctl = (args: string[], env: Record<string, string> = {}) => execa('node', [BIN.slotctl, ...args], { reject: false, env });

describe('slotctl', () => {
  it.each([
    [['--help'], /Usage: slotctl \[options\] \[command\][\s\S]*Exit codes: 0 ok, 1 error, 2 usage, 3 cluster not healthy/],
    [['status', '--help'], /Usage: slotctl status[\s\S]*Exits 3 when the\s+cluster is not healthy[\s\S]*--json/],
    [['machine', 'list', '--help'], /Usage: slotctl machine list[\s\S]*--json/],
    [['store', 'list', '--help'], /Usage: slotctl store list[\s\S]*--json/],
    [['events', '--help'], /Usage: slotctl events[\s\S]*--since <when>[\s\S]*--store <store>[\s\S]*--json/],
    [['cluster', 'apply', '--help'], /Usage: slotctl cluster apply[\s\S]*--dry-run[\s\S]*--prune/],
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
    expect(stores.map((s) => [s.name, s.epoch, s.master.name])).toEqual([['s01', 1, 's01-m1'], ['s02', 1, 's02-m2']]);
    const events = JSON.parse((await cluster.slotctl(['events', '--json', '--since', '1h', '--store', 's01'])).stdout) as { kind: string; store: string }[];
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.store === 's01')).toBe(true);
  });

  it('shows machines and stores as tables, problems first, and exits 3 while slots are not serving', async () => {
    const result = await cluster.slotctl(['status']);
    expect(result.exitCode).toBe(3);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^cluster NOT HEALTHY — machines 2\/2 up, stores 0\/2 ok/);
    expect(lines[2]).toMatch(/^problems \(\d+, worst first\):/);
    expect(result.stdout).toMatch(/│ m1\s+│ 127\.0\.10\.1 │ up/);
    expect(result.stdout).toMatch(/│ s01\s+│ down\s+│ 1\s+│ 127\.0\.20\.1 │ s01-m1@m1 absent/);
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
    const flag = await slotctl(['--coordinator', `127.0.0.1:${port}`, '--timeout', '2s', 'status']);
    expect(flag.exitCode).toBe(1);
    expect(flag.stderr).toContain(`cannot reach the coordinator at 127.0.0.1:${port}`);
    expect(flag.stderr).toMatch(/hint: is slot-coordinator running there\?/);
    const env = await slotctl(['--timeout', '2s', 'machine', 'list'], { SLOTCTL_COORDINATOR: `127.0.0.1:${port}` });
    expect(env.exitCode).toBe(1);
    expect(env.stderr).toContain(`127.0.0.1:${port}`);
  });

  it('exits 1 on a bad value and names it', async () => {
    const result = await cluster.slotctl(['events', '--since', 'yesterday-ish']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/--since "yesterday-ish" is neither a duration/);
  });
});
