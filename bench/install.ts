// bench/install: what installing slotctl on a mail host costs, and what an agent upgrade costs the mail. Builds the
// .deb (`npm run package`), reports its size, times `dpkg -i` on this host (a first install after a purge, --installs
// times), then runs a namespace cluster (5 machines × 8 slots) on the installed binaries under an MTA-like load of
// --load messages/s and restarts agents --restarts times, one at a time, round robin (SIGTERM, start: what a package
// upgrade's unit restart does): agent restart → its slots re-adopted (connected, machine up, every slot serving from
// the same cyrmaster), p50/p99; fences and failovers counted (both must be 0). Purges the package at the end.
// Writes bench/results/install.json.
//
//   npm run bench:install -- [--restarts 20] [--installs 3] [--load 25]
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetnsCluster } from '../test/cluster/netns.js';
import { clusterChecks, type OperationJson } from '../test/cluster/checks.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { ROOT } from '../tools/local-cluster.js';
import { benchArg } from './common.js';
import { installedVersion } from '../test/support/package-install.js';

const restarts = Number(benchArg('restarts', '20'));
const installs = Number(benchArg('installs', '3'));
const loadRate = Number(benchArg('load', '25'));
const dir = tempDir('install-bench');
const debs = join(dir, 'debs');

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const stats = (xs: number[]) => ({ p50: Math.round(percentile(xs, 50)), p99: Math.round(percentile(xs, 99)), max: Math.round(Math.max(...xs)), runs: xs.length });

async function run(cmd: string, args: string[], cwd?: string) {
  const r = await execa(cmd, args, { reject: false, ...(cwd ? { cwd } : {}) });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`);
  return r;
}

async function main(): Promise<void> {
  if (await installedVersion()) throw new Error('slotctl is installed on this host already: the benchmark installs and purges it; remove it first (dpkg --purge slotctl)');
  mkdirSync(debs, { recursive: true });
  const version = JSON.parse(readFileSync(join(ROOT, 'packages/shared/package.json'), 'utf8')).version as string;
  let t = performance.now();
  await run('npm', ['run', '--silent', 'package', '--', '--out', debs], ROOT);
  const buildMs = performance.now() - t;
  const deb = join(debs, `slotctl_${version}_amd64.deb`);
  const bytes = statSync(deb).size;
  const installedKb = Number((await run('dpkg-deb', ['-f', deb, 'Installed-Size'])).stdout.trim());
  console.log(`package ${deb}: ${(bytes / 1e6).toFixed(1)} MB (installed ${(installedKb / 1024).toFixed(1)} MB), built in ${(buildMs / 1000).toFixed(1)} s`);
  const installMs: number[] = [];
  for (let i = 0; i < installs; i++) {
    t = performance.now();
    await run('dpkg', ['-i', deb]);
    installMs.push(performance.now() - t);
    if (i < installs - 1) await run('dpkg', ['--purge', 'slotctl']);
  }
  console.log(`dpkg -i (fresh): ${installMs.map((ms) => Math.round(ms)).join(', ')} ms`);

  const cluster = new NetnsCluster({
    dir, id: 'u', storePrefix: 'u', machines: 5, slotsPerMachine: 8, agentsKeepSlots: true,
    bin: { coordinator: '/usr/bin/slot-coordinator', agent: '/usr/bin/slot-agent', slotctl: '/usr/bin/slotctl' },
    log: (l) => console.log(`  ${l}`),
  });
  const { stores, loadTargets, restartAgentReadopted, leaseLeftAtRestarts } = clusterChecks(cluster, ['ann', 'ben']);
  const readopted: number[] = [];
  let result: Record<string, unknown> = {};
  try {
    await cluster.start();
    const before = await stores();
    const since = new Date().toISOString();
    const load = cluster.startLoad('load-install-bench', loadTargets(before), loadRate);
    await new Promise((r) => setTimeout(r, 3000));
    for (let i = 0; i < restarts; i++) {
      const machine = cluster.machines[i % cluster.machines.length]!;
      const ms = await restartAgentReadopted(machine);
      readopted.push(ms);
      console.log(`restart ${i + 1}/${restarts} ${machine}: slots re-adopted in ${Math.round(ms)} ms`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    const summary = await load.stop();
    const events = await cluster.slotctlJson<{ kind: string }[]>(['events', '--since', since, '--limit', '10000']);
    const failovers = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all'])).filter((o) => o.kind === 'failover').length;
    const fenced = cluster.machines.filter((m) => existsSync(join(dir, 'agents', m, 'fenced.json'))).length;
    const down = events.filter((e) => e.kind === 'machine.down').length;
    // how close each restart came to the fence: the inherited lease (renewed with the restart hold on the way out)
    // left at the new agent's first renewal
    const leftMs = cluster.machines.flatMap(leaseLeftAtRestarts);
    result = {
      bench: 'install',
      at: new Date().toISOString(),
      host: { cpus: cpus().length, model: cpus()[0]?.model },
      package: { version, bytes, installedKb, buildMs: Math.round(buildMs) },
      dpkgInstallMs: { runs: installMs.map(Math.round), p50: Math.round(percentile(installMs, 50)) },
      agentRestartReadoptedMs: stats(readopted),
      leaseLeftAtFirstRenewalMs: { min: Math.min(...leftMs), p50: Math.round(percentile(leftMs, 50)), runs: leftMs.length },
      load: { rate: loadRate, acked: summary.acked, rejected: summary.rejected, inFlight: summary.inFlight, longestMs: summary.longestMs },
      machinesDown: down,
      failovers,
      fencedMachines: fenced,
      cluster: '5 machines × 8 slots, installed binaries',
    };
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await cluster.destroy();
    await execa('dpkg', ['--purge', 'slotctl'], { reject: false });
    removeDir(dir);
  }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/install.json'), `${JSON.stringify(result, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
