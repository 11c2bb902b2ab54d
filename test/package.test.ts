// The .deb (npm run package, tools/package): built twice (two versions), its control fields and file list checked,
// installed on this host with dpkg, its commands run from the installed tree (no checkout on their path), upgraded
// in place (state, certificates and an edited conffile kept), purged (nothing of it left but what purge keeps on
// purpose: the slotctl system user, and /etc/slotctl/tls while it holds the operator's files). Needs root (dpkg -i).
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, freePort } from '../tools/local-cluster.js';
import { removeDir, tempDir } from './support/fixtures.js';
import { TEST_OPERATOR_KEY, clearTestInstall, installedVersion, markTestInstall, purgeTestInstall, lstatExists } from './support/package-install.js';

const dir = tempDir('package');
const V1 = (JSON.parse(readFileSync(join(ROOT, 'packages/shared/package.json'), 'utf8')) as { version: string }).version;
const V2 = V1.replace(/\d+$/, (patch) => String(Number(patch) + 1));
const debs: Record<string, string> = {};
const BINS = ['slotctl', 'slot-agent', 'slot-coordinator', 'slot-fence', 'slot-syslogd'];
/** The example configs the package must ship as conffiles. */
const CONFIGS = existsSync(join(ROOT, 'deploy/config')) ? readdirSync(join(ROOT, 'deploy/config')) : [];
const MASK = '/etc/systemd/system/cyrus-imapd.service';
const SHARED = '/usr/lib/slotctl/node_modules/@slotctl/shared';
// State on this host before the test, so that the clean-up removes only what the test made. Read once a leftover
// of an earlier test run is gone (beforeAll): read before, a killed run's install counted as the host's own (its
// masked cyrus-imapd.service, its /etc/slotctl), and the next run's purge check failed on it.
let maskedBefore = false;
let etcBefore = false;
let coordinator: ResultPromise<{ reject: false }> | undefined;

/** Run an installed command from a neutral directory: nothing of the checkout on its way. */
const run = (cmd: string, args: string[]) => execa(cmd, args, { reject: false, cwd: dir, env: { NODE_PATH: '' } });
const dpkg = async (args: string[]) => {
  const r = await execa('dpkg', args, { reject: false, env: { DEBIAN_FRONTEND: 'noninteractive' } });
  if (args[0] === '-i' && r.exitCode === 0) markTestInstall(); // this install is the test's: it may purge it
  return r;
};

async function build(version: string): Promise<void> {
  const started = Date.now();
  const r = await execa(process.execPath, ['--import', 'tsx', 'tools/package/main.ts', '--version', version, '--out', dir], { cwd: ROOT, reject: false });
  expect(r.exitCode, r.stderr + r.stdout).toBe(0);
  debs[version] = join(dir, `slotctl_${version}_amd64.deb`);
  expect(r.stdout.split('\n')[0]).toBe(debs[version]);
  console.log(`package ${version}: ${(statSync(debs[version]!).size / 1e6).toFixed(1)} MB, built in ${((Date.now() - started) / 1000).toFixed(1)} s (the tool: ${r.stdout.split('\n')[1]?.trim()})`);
}

beforeAll(async () => {
  expect(process.getuid?.(), 'dpkg -i needs root').toBe(0);
  // a leftover of an earlier run that failed before its clean-up; never an install that is not a test's
  await clearTestInstall();
  maskedBefore = lstatExists(MASK);
  etcBefore = existsSync('/etc/slotctl');
  await build(V1);
  await build(V2);
}, 240_000);

afterAll(async () => {
  coordinator?.kill('SIGKILL');
  await purgeTestInstall();
  // what purge keeps on purpose (the operator's certificates) must not reach later tests either
  if (!etcBefore) rmSync('/etc/slotctl', { recursive: true, force: true });
  removeDir(dir);
}, 60_000);

describe('the .deb', () => {
  it('says what it is and what it needs', async () => {
    const field = async (name: string) => (await execa('dpkg-deb', ['-f', debs[V1]!, name])).stdout;
    expect(await field('Package')).toBe('slotctl');
    expect(await field('Version')).toBe(V1);
    expect(await field('Architecture')).toBe('amd64');
    expect(await field('Maintainer')).toMatch(/<.+@.+>/);
    expect(Number(await field('Installed-Size'))).toBeGreaterThan(1000);
    const depends = (await field('Depends')).split(',').map((d) => d.trim());
    for (const d of ['nodejs (>= 20.5)', 'nodejs (<< 21)', 'cyrus-imapd', 'cyrus-replication', 'iputils-arping', 'iproute2']) expect(depends).toContain(d);
    const conffiles = (await execa('dpkg-deb', ['-I', debs[V1]!, 'conffiles'], { reject: false })).stdout.split('\n').filter(Boolean);
    expect(conffiles.sort()).toEqual(CONFIGS.map((f) => `/etc/slotctl/${f}`).sort());
  });

  it('holds the built code, its production dependencies once, the units and the examples; no sources, tests or dev tools', async () => {
    const lines = (await execa('dpkg-deb', ['-c', debs[V1]!])).stdout.split('\n');
    const paths = lines.map((l) => l.slice(l.indexOf('./') + 1).replace(/ -> .*$/, ''));
    for (const bin of BINS) expect(lines.find((l) => l.includes(`./usr/bin/${bin} -> `)), bin).toMatch(/^l/);
    for (const p of [
      '/lib/systemd/system/slot-agent.service',
      '/lib/systemd/system/slot-coordinator.service',
      '/usr/share/slotctl/rsyslog/30-slotctl.conf.template',
      '/usr/share/slotctl/prometheus/alerts.yml',
      '/usr/share/doc/slotctl/copyright',
      '/usr/share/doc/slotctl/changelog.Debian.gz',
      `${SHARED}/proto/slotctl.proto`,
      `${SHARED}/dist/contract.json`,
      '/usr/lib/slotctl/node_modules/@slotctl/coordinator/page/index.html',
      '/usr/lib/slotctl/node_modules/@slotctl/planner/dist/index.js',
    ]) {
      expect(paths, p).toContain(p);
    }
    expect(paths.filter((p) => /\.[cm]?ts$/.test(p)), 'TypeScript').toEqual([]);
    // (deploy/prometheus/alerts.test.yml is shipped on purpose: promtool's tests of the alert rules, for operators)
    const code = paths.filter((p) => p.startsWith('/usr/lib/slotctl/'));
    expect(code.filter((p) => /\.test\.|\/src\/.*\.ts|\/\.bin\//.test(p)), 'tests, sources, .bin shims').toEqual([]);
    expect(paths.filter((p) => /\/\.pnpm\/(vitest|typescript|tsx|esbuild|fast-check|playwright-core|nodemailer|@types\+better-sqlite3)@/.test(p)), 'devDependencies').toEqual([]);
    expect(paths.filter((p) => p.endsWith('/better_sqlite3.node')), 'one native build').toHaveLength(1);
  });

  it('installs, and its commands run from the installed tree', async () => {
    const started = Date.now();
    const r = await dpkg(['-i', debs[V1]!]);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    console.log(`dpkg -i ${V1}: ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const version = await run('/usr/bin/slotctl', ['--version']);
    expect(version.stdout.trim(), version.stderr).toBe(V1);
    for (const bin of ['slot-agent', 'slot-coordinator', 'slot-fence', 'slot-syslogd']) {
      const help = await run(`/usr/bin/${bin}`, ['--help']);
      expect(help.exitCode, `${bin}: ${help.stderr}`).toBe(0);
      expect(help.stdout).toMatch(/Usage:/);
    }
    // the installed contract is the one the build parsed: the fast path (dist/contract.json) is taken
    const proto = createHash('sha256').update(readFileSync(`${SHARED}/proto/slotctl.proto`)).digest('hex');
    expect((JSON.parse(readFileSync(`${SHARED}/dist/contract.json`, 'utf8')) as { protoSha256: string }).protoSha256).toBe(proto);
  });

  it('runs a coordinator that slotctl talks to and that stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const data = join(dir, 'coordinator');
    coordinator = execa('/usr/bin/slot-coordinator', ['--insecure', '--listen', `127.0.0.1:${port}`, '--data-dir', data, '--http-listen', 'off'], { reject: false, cwd: dir, env: { NODE_PATH: '' } });
    let listed: Awaited<ReturnType<typeof run>> | undefined;
    for (const until = Date.now() + 30_000; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
      listed = await run('/usr/bin/slotctl', ['--insecure', '--coordinator', `127.0.0.1:${port}`, 'machine', 'list', '--json']);
      if (listed.exitCode === 0) break;
    }
    expect(listed?.exitCode, listed?.stderr).toBe(0);
    expect(JSON.parse(listed!.stdout)).toEqual([]);
    coordinator.kill('SIGTERM');
    const ended = await coordinator;
    coordinator = undefined;
    expect({ exitCode: ended.exitCode, signal: ended.signal }, String(ended.stderr)).toEqual({ exitCode: 0, signal: undefined });
    expect(existsSync(join(data, 'coordinator.db'))).toBe(true);
  });

  it('sets up the user, the directories and the mask on Debian\'s own Cyrus', async () => {
    expect((await execa('getent', ['passwd', 'slotctl'])).stdout).toMatch(/^slotctl:x:\d+:\d+:.*:\/var\/lib\/slotctl:/);
    const uid = Number((await execa('id', ['-u', 'slotctl'])).stdout);
    const gid = Number((await execa('id', ['-g', 'slotctl'])).stdout);
    const owner = (p: string) => {
      const s = statSync(p);
      return { mode: (s.mode & 0o7777).toString(8), uid: s.uid, gid: s.gid };
    };
    expect(owner('/var/lib/slotctl')).toEqual({ mode: '700', uid, gid });
    expect(owner('/var/lib/slotctl-agent')).toEqual({ mode: '700', uid: 0, gid: 0 });
    expect(owner('/etc/slotctl/tls')).toEqual({ mode: '750', uid: 0, gid });
    expect(owner('/etc/slotctl').mode).toBe('755');
    expect(readlinkSync(MASK)).toBe('/dev/null');
    // the units are installed but not enabled: they need a config first
    expect(existsSync('/etc/systemd/system/multi-user.target.wants/slot-agent.service')).toBe(false);
  });

  it('upgrades in place keeping state, certificates and an edited conffile', async () => {
    writeFileSync('/var/lib/slotctl/kept.db', 'state');
    writeFileSync(TEST_OPERATOR_KEY.path, TEST_OPERATOR_KEY.content, { mode: 0o600 });
    const conffile = (await execa('dpkg-deb', ['-I', debs[V2]!, 'conffiles'], { reject: false })).stdout.split('\n').find(Boolean);
    if (conffile) appendFileSync(conffile, '# edited by the operator\n');
    const started = Date.now();
    const r = await dpkg(['-i', debs[V2]!]);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    console.log(`dpkg -i ${V2} (upgrade): ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect((await run('/usr/bin/slotctl', ['--version'])).stdout.trim()).toBe(V2);
    expect(readFileSync('/var/lib/slotctl/kept.db', 'utf8')).toBe('state');
    expect(readFileSync('/etc/slotctl/tls/operator.key', 'utf8')).toBe('not a real key');
    if (conffile) expect(readFileSync(conffile, 'utf8')).toContain('# edited by the operator');
    expect(readlinkSync(MASK)).toBe('/dev/null');
  });

  it('refuses removal while a slot-fence still guards Cyrus slots (their state must outlive the package)', async () => {
    // a stand-in fence: a live process whose command line names slot-fence, in the agent's state directory's pid file
    const fence = execa('sleep', ['300'], { argv0: 'slot-fence', reject: false });
    const pidFile = '/var/lib/slotctl-agent/slot-fence.pid';
    writeFileSync(pidFile, `${fence.pid}\n`);
    try {
      const r = await dpkg(['--remove', 'slotctl']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toContain(`slot-fence (pid ${fence.pid}) still guards Cyrus slots on this host`);
      expect(await installedVersion()).toBe(V2);
      expect(existsSync('/usr/bin/slot-agent')).toBe(true);
    } finally {
      fence.kill('SIGKILL');
      await fence;
      rmSync(pidFile, { force: true });
    }
  });

  it('purges all of itself but the operator\'s certificates and the system user', async () => {
    const listed = (await execa('dpkg', ['-L', 'slotctl'])).stdout.split('\n').filter((p) => p && p !== '/.');
    const r = await dpkg(['--purge', 'slotctl']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stderr).toContain('kept /etc/slotctl/tls');
    // what is left of the list: directories other packages own as well (/usr/bin, /lib/systemd/system, …)
    const left = listed.filter(lstatExists);
    for (const p of left.filter((p) => p !== '/etc/slotctl')) {
      expect(statSync(p).isDirectory(), `${p} is left`).toBe(true);
      expect((await execa('dpkg-query', ['-S', p], { reject: false })).exitCode, `${p} is left and no other package owns it`).toBe(0);
    }
    expect(left.filter((p) => p.includes('slotctl') && p !== '/etc/slotctl')).toEqual([]);
    expect(existsSync('/var/lib/slotctl')).toBe(false);
    expect(existsSync('/var/lib/slotctl-agent')).toBe(false);
    expect(lstatExists(MASK)).toBe(maskedBefore);
    // kept on purpose: the operator's key (and so its directory), the user (Debian keeps system users)
    expect(readFileSync('/etc/slotctl/tls/operator.key', 'utf8')).toBe('not a real key');
    expect((await execa('getent', ['passwd', 'slotctl'], { reject: false })).exitCode).toBe(0);
    rmSync('/etc/slotctl/tls/operator.key');
    // …and a purge with no certificates left takes the directories too
    expect((await dpkg(['-i', debs[V1]!])).exitCode).toBe(0);
    expect((await dpkg(['--purge', 'slotctl'])).exitCode).toBe(0);
    expect(existsSync('/etc/slotctl')).toBe(false);
  });
});
