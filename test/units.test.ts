// deploy/systemd's units, as shipped: `systemd-analyze verify` finds no warning about them, and the properties the
// supervision relies on are there (parsed from the file, so that none can be dropped silently).
//
// How they are verified: verify checks that ExecStart's program exists and is executable, and the package's
// /usr/bin/slot-agent and /usr/bin/slot-coordinator are not installed on a test host. So the test builds a root
// directory holding what a host with the package would have at those paths — the built bin scripts, copied to
// ROOT/usr/bin under the package's names — the host's own systemd units (targets the units name), and the units
// byte for byte in ROOT/etc/systemd/system, then runs `systemd-analyze verify --root=ROOT`. The unit files are not
// rewritten; only the install is simulated. systemd must be installed (scripts/setup.sh): no systemd-analyze fails.
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = (path: string) => new URL(`../${path}`, import.meta.url).pathname;
const UNITS = { 'slot-agent.service': 'packages/agent/bin/slot-agent.js', 'slot-coordinator.service': 'packages/coordinator/bin/slot-coordinator.js' } as const;
type UnitName = keyof typeof UNITS;

/** A unit file's assignments per section; a key given more than once keeps every value, in order. */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      out[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !section) throw new Error(`not an assignment in a section: ${line}`);
    ((out[section] ??= {})[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

const unit = (name: UnitName) => parseUnit(readFileSync(repo(`deploy/systemd/${name}`), 'utf8'));
/** The one value of a [Service] key (undefined when absent; a key set twice fails: the second would win unseen). */
function service(name: UnitName, key: string): string | undefined {
  const values = unit(name).Service?.[key];
  if (values && values.length > 1) throw new Error(`${name}: ${key} is set ${values.length} times`);
  return values?.[0];
}

describe('systemd units', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'slotctl-units-'));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    for (const [name, bin] of Object.entries(UNITS)) {
      copyFileSync(repo(`deploy/systemd/${name}`), join(root, 'etc/systemd/system', name));
      copyFileSync(repo(bin), join(root, 'usr/bin', name.replace('.service', '')));
    }
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('systemd-analyze is installed (the systemd package: scripts/setup.sh)', async () => {
    const r = await execa('systemd-analyze', ['--version'], { reject: false });
    expect(r.failed, `systemd-analyze --version: ${r.shortMessage}`).toBe(false);
  });

  for (const name of Object.keys(UNITS) as UnitName[]) {
    it(`systemd-analyze verify finds nothing to say about ${name}`, async () => {
      const r = await execa('systemd-analyze', ['verify', `--root=${root}`, name], { reject: false, all: true });
      // verify exits 0 on an unknown key or a bad value (it only warns): any line about the unit fails
      const about = (r.all ?? '').split('\n').filter((l) => l.includes(name.replace('.service', '')));
      expect(about).toEqual([]);
      expect(r.exitCode, r.all).toBe(0);
    });
  }

  it('the agent: notify with a watchdog from its loop, KillMode=process, only the capabilities it uses', () => {
    const u = 'slot-agent.service';
    expect(service(u, 'Type')).toBe('notify');
    expect(service(u, 'NotifyAccess')).toBe('all');
    expect(service(u, 'ExecStart')).toBe('/usr/bin/slot-agent --config /etc/slotctl/agent.yaml');
    // a hung agent must be killed before the lease thread stops renewing for it (10 s) and leave room for restart
    const watchdog = service(u, 'WatchdogSec');
    expect(watchdog).toMatch(/^\d+s$/);
    expect(Number.parseInt(watchdog!, 10)).toBeGreaterThanOrEqual(5);
    expect(Number.parseInt(watchdog!, 10)).toBeLessThan(10);
    // no core dump of a hung agent: it could take seconds the lease does not have
    expect(service(u, 'WatchdogSignal')).toBe('SIGKILL');
    expect(service(u, 'KillMode')).toBe('process');
    expect(service(u, 'Restart')).toBe('always');
    expect(service(u, 'TimeoutStopSec')).toBeDefined();
    expect(service(u, 'StateDirectory')).toBe('slotctl-agent');
    expect(service(u, 'Nice')).toBe('-10');
    expect(service(u, 'CapabilityBoundingSet')!.split(/\s+/).sort()).toEqual(
      ['CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_SETUID', 'CAP_SETGID', 'CAP_CHOWN', 'CAP_FOWNER', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_KILL', 'CAP_SYS_NICE', 'CAP_SYS_PTRACE'].sort(),
    );
    // at shutdown the agent stops (and flushes its masters) before the network goes down
    expect(unit(u).Unit?.After).toContain('network-online.target');
  });

  it('the coordinator: notify, its own user, a read-only system, no capability', () => {
    const u = 'slot-coordinator.service';
    expect(service(u, 'Type')).toBe('notify');
    expect(service(u, 'NotifyAccess')).toBe('all');
    expect(service(u, 'ExecStart')).toBe('/usr/bin/slot-coordinator --config /etc/slotctl/coordinator.yaml');
    expect(service(u, 'User')).toBe('slotctl');
    expect(service(u, 'Group')).toBe('slotctl');
    expect(service(u, 'ProtectSystem')).toBe('strict');
    expect(service(u, 'ProtectHome')).toBe('yes');
    expect(service(u, 'PrivateTmp')).toBe('yes');
    expect(service(u, 'NoNewPrivileges')).toBe('yes');
    expect(service(u, 'StateDirectory')).toBe('slotctl');
    expect(service(u, 'StateDirectoryMode')).toBe('0700');
    expect(service(u, 'RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(service(u, 'CapabilityBoundingSet')).toBe('');
    expect(service(u, 'AmbientCapabilities')).toBeUndefined();
    // the priority comes from the unit (--nice's default matches): no CAP_SYS_NICE needed
    expect(service(u, 'Nice')).toBe('-10');
    // V8's JIT writes the code it runs
    expect(service(u, 'MemoryDenyWriteExecute')).toBeUndefined();
  });

  it('neither unit goes through /usr/bin/env', () => {
    for (const name of Object.keys(UNITS) as UnitName[]) expect(readFileSync(repo(`deploy/systemd/${name}`), 'utf8')).not.toContain('/usr/bin/env');
  });
});
