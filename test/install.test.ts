// The package as an operator installs it. `npm run package` builds the .deb, `dpkg -i` installs it on this host, and a
// namespace cluster runs on what it installed: coordinator, agents and slotctl are /usr/bin's, not the source tree's
// (the mail tools of the test still come from the tree). Mail is delivered and a switchover works. Then a rolling
// upgrade: the next minor version installed over it, the coordinator restarted onto it, and the agents one by one
// while mail flows — no fence, no failover, no message lost, and every slot re-adopted (the same cyrmaster serves
// before and after). Last, `dpkg --purge` leaves nothing of the package but what purge is meant to keep.
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';
import { clearTestInstall, installedVersion, markTestInstall, purgeTestInstall, lstatExists } from './support/package-install.js';

const dir = tempDir('install');
const debs = join(dir, 'debs');
const OLD = '0.1.0';
const NEW = '0.2.0';
const cluster = new NetnsCluster({
  dir,
  id: 'i',
  storePrefix: 'i',
  machines: 4,
  slotsPerMachine: 4,
  bin: { coordinator: '/usr/bin/slot-coordinator', agent: '/usr/bin/slot-agent', slotctl: '/usr/bin/slotctl' },
  agentsKeepSlots: true,
  // as an operator runs them: settings in /etc/slotctl/*.yaml-like files, not flags
  configFiles: true,
  log: (line) => console.log(`[install] ${line}`),
});
const { stores, expectOneMaster, waitAgentsConnected, expectNoLoss, loadTargets, restartAgentReadopted, leaseLeftAtRestarts } = clusterChecks(cluster, ['ann', 'ben']);

async function run(cmd: string, args: string[], options: { cwd?: string } = {}) {
  const r = await execa(cmd, args, { reject: false, ...options });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

// a mask of Debian's cyrus-imapd that was there before the test is not the package's to remove
const maskedBefore = lstatExists('/etc/systemd/system/cyrus-imapd.service');
const debOf = (version: string) => join(debs, `slotctl_${version}_amd64.deb`);

/** Milliseconds of `dpkg -i`. */
async function dpkgInstall(version: string): Promise<number> {
  const t = performance.now();
  await run('dpkg', ['-i', debOf(version)]);
  const ms = performance.now() - t;
  markTestInstall();
  return ms;
}

// registered before useCluster's hooks: the packages are built and installed before the cluster starts, and (hooks
// after a file run in reverse order) a purge left over by a failed test runs after the cluster is gone
beforeAll(async () => {
  await clearTestInstall();
  mkdirSync(debs, { recursive: true });
  for (const version of [OLD, NEW]) {
    const t = performance.now();
    await run('npm', ['run', '--silent', 'package', '--', '--version', version, '--out', debs], { cwd: ROOT });
    console.log(`[install] built ${debOf(version)} (${readFileSync(debOf(version)).length} bytes) in ${Math.round(performance.now() - t)} ms`);
  }
  console.log(`[install] dpkg -i ${OLD}: ${Math.round(await dpkgInstall(OLD))} ms`);
  expect(await installedVersion()).toBe(OLD);
}, 600_000);

afterAll(async () => {
  await purgeTestInstall();
}, 120_000);

useCluster(cluster, dir, 'i');

/** The command line of a running process: proves which executable a daemon is. */
function commandLine(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
}

describe('the Debian package on a namespace cluster', () => {
  it('runs the cluster from /usr/bin: mail is delivered and a switchover works', async () => {
    expect(commandLine(cluster.agentPid('m1'))).toMatch(/\/usr\/bin\/slot-agent --config \S+agent-m1\.yaml/);
    expect(commandLine(cluster.coordinatorProcess!.pid)).toContain('/usr/bin/slot-coordinator');
    const machines = await cluster.slotctlJson<{ name: string; agentVersion: string }[]>(['machine', 'list']);
    expect(machines.map((m) => m.agentVersion)).toEqual(cluster.machines.map(() => OLD));
    const all = await stores();
    const load = cluster.startLoad('load-install', loadTargets(all), 20);
    await new Promise((r) => setTimeout(r, 3000));
    const name = all[0]!.name;
    const before = all[0]!;
    const switched = await cluster.slotctl(['store', 'switchover', name]);
    expect(switched.exitCode, switched.stdout + switched.stderr).toBe(0);
    const after = await expectOneMaster(name);
    expect(after.master.machine).toBe(before.replica.machine);
    const summary = await load.stop();
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight).toBe(0);
    expect(summary.acked).toBeGreaterThan(0);
    expect(await expectNoLoss(load.out, all.map((s) => s.name))).toBe(summary.acked);
  }, 300_000);

  it(`upgrades ${OLD} → ${NEW} with mail flowing: coordinator, then each agent; no fence, no failover, nothing lost, slots re-adopted`, async () => {
    const before = await stores();
    const since = new Date().toISOString();
    const load = cluster.startLoad('load-upgrade', loadTargets(before), 20);
    await new Promise((r) => setTimeout(r, 2000));
    console.log(`[install] dpkg -i ${NEW} over ${OLD}: ${Math.round(await dpkgInstall(NEW))} ms`);
    expect(await installedVersion()).toBe(NEW);
    expect((await run('/usr/bin/slotctl', ['--version'])).stdout.trim()).toBe(NEW);
    // coordinators first: the new one works with agents of the previous minor version
    await cluster.stopCoordinator();
    await cluster.startCoordinator();
    await waitAgentsConnected();
    const readopted: number[] = [];
    for (const machine of cluster.machines) {
      readopted.push(await restartAgentReadopted(machine, NEW));
      expect(commandLine(cluster.agentPid(machine))).toContain('/usr/bin/slot-agent');
    }
    const sorted = [...readopted].sort((a, b) => a - b);
    console.log(`[install] agent restart → slots re-adopted: ${sorted.map((ms) => Math.round(ms)).join(', ')} ms`);
    // how close each restart came to the fence: the lease its predecessor renewed on the way out, left at its first renewal
    const margins = cluster.machines.map((m) => `${m} ${leaseLeftAtRestarts(m).at(-1) ?? '?'}`);
    console.log(`[install] lease left at each restarted agent's first renewal (ms): ${margins.join(', ')}`);
    const summary = await load.stop();
    console.log(`[install] load through the upgrade: ${JSON.stringify(summary)}`);
    const events = await cluster.slotctlJson<{ kind: string; machine: string; reason: string }[]>(['events', '--since', since, '--limit', '10000']);
    expect(events.filter((e) => e.kind === 'machine.down' || e.kind === 'agent.version-refused')).toEqual([]);
    const failovers = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all'])).filter((o) => o.kind === 'failover');
    expect(failovers).toEqual([]);
    for (const m of cluster.machines) expect(existsSync(join(dir, 'agents', m, 'fenced.json')), `${m} fenced`).toBe(false);
    const after = await stores();
    for (const s of after) {
      const b = before.find((x) => x.name === s.name)!;
      expect([s.master.name, s.epoch, s.master.pid, s.replica.pid], s.name).toEqual([b.master.name, b.epoch, b.master.pid, b.replica.pid]);
    }
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight, `still queued or being delivered, per store: ${JSON.stringify(summary.inFlightByStore)}`).toBe(0);
    expect(await expectNoLoss(load.out, before.map((s) => s.name))).toBe(summary.acked);
  }, 600_000);

  it('purge removes every file of the package and its state; what it keeps is said', async () => {
    await cluster.destroy();
    const files = (await run('dpkg', ['-L', 'slotctl'])).stdout.split('\n').filter(Boolean);
    expect(files).toContain('/usr/bin/slot-agent');
    const purged = await run('dpkg', ['--purge', 'slotctl']);
    console.log(`[install] purge said: ${purged.stdout.trim()} ${purged.stderr.trim()}`);
    expect(await installedVersion()).toBeUndefined();
    // directories the package shares with the system (/usr/bin, /lib/systemd/system…) stay; nothing of its own does
    const left = files.filter((f) => {
      try {
        lstatSync(f);
      } catch {
        return false; // gone
      }
      try {
        return !statSync(f).isDirectory() || f.includes('slotctl'); // /lib is a link to usr/lib (merged /usr)
      } catch {
        return true; // a link of ours left dangling
      }
    });
    expect(left).toEqual([]);
    for (const path of ['/var/lib/slotctl', '/var/lib/slotctl-agent', '/usr/lib/slotctl', '/etc/slotctl/agent.yaml', '/etc/slotctl/coordinator.yaml']) expect(existsSync(path), path).toBe(false);
    // the mask on Debian's own Cyrus was the package's (none before the test): gone with it
    if (!maskedBefore) expect(lstatExists('/etc/systemd/system/cyrus-imapd.service')).toBe(false);
  }, 120_000);
});

