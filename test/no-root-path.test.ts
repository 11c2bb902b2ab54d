// No path to root, with real agents and Cyrus: a slot's directories belong to cyrus, so a link there (META/run swapped
// for a symlink to a root-owned directory) must fail the slot with a reason, never make root chown or write through
// it; a slot path outside the machine's declared disks is refused before anything is created; the rendered config
// that holds the replication password is root:mail 0640 and unreadable to other users, and an agent whose password
// file others may read refuses to start.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, LocalCluster, waitFor } from '../tools/local-cluster.js';
import { processCommandLines, removeDir, tempDir } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('no-root-path');
const cluster = new LocalCluster({ dir });
const passwordFile = join(dir, 'sync-password');
const PASSWORD = 'no path to root';
const GOOD = `${PREFIX}01`;
const ASTRAY = `${PREFIX}02`;
const meta = (m: string, store: string) => join(dir, 'srv', m, store, 'meta');
/** Outside m2's declared disk: the agent must refuse it before it creates anything there. */
const astrayPath = join(dir, 'astray', 'm2');
const isRoot = process.getuid?.() === 0;

function clusterFile(): string {
  const slot = (store: string, m: string, host: number, root = join(dir, 'srv', m, store)) =>
    `      - { machine: ${m}, ip: 127.${NET}.${m === 'm1' ? 1 : 2}.${host}, data_path: ${root}/data, meta_path: ${root}/meta }`;
  return [
    'machines:',
    ...['m1', 'm2'].map((m, i) => `  - { name: ${m}, address: 127.${NET}.0.${i + 1}, disks: [{ name: d0, path: ${join(dir, 'srv', m)}, class: hdd }] }`),
    'stores:',
    ...[GOOD, ASTRAY].flatMap((store, i) => [
      `  - name: ${store}`,
      `    service_ip: 127.${NET}.3.${i + 1}`,
      '    master: m1',
      '    slots:',
      slot(store, 'm1', i + 1),
      slot(store, 'm2', i + 1, store === ASTRAY ? astrayPath : undefined),
    ]),
    '',
  ].join('\n');
}

const events = async (slot: string) =>
  (JSON.parse((await cluster.slotctl(['events', '--json', '--since', '1h', '--limit', '1000'])).stdout) as { kind: string; slot: string; reason: string }[]).filter((e) => e.slot === slot);
/** Every running process started with this slot's imapd.conf (its cyrmaster and children). */
const cyrusOf = (m: string, store: string) => processCommandLines().filter((c) => c.includes(join(meta(m, store), 'etc', 'imapd.conf')));

beforeAll(async () => {
  writeFileSync(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  await cluster.startCoordinator();
  const applied = await cluster.slotctl(['cluster', 'apply', '-'], clusterFile());
  expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0);
  for (const m of ['m1', 'm2']) cluster.startAgent(m, { syncPasswordFile: passwordFile });
  for (const s of [`${GOOD}-m1`, `${GOOD}-m2`, `${ASTRAY}-m1`]) await cluster.waitSlotState(s, 'SERVING', 60_000);
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe.runIf(isRoot)('no path to root', () => {
  it('writes the config holding the replication password root:mail 0640, unreadable to other users', async () => {
    const conf = join(meta('m1', GOOD), 'etc', 'imapd.conf');
    expect(readFileSync(conf, 'utf8')).toContain(`sync_password: ${PASSWORD}`);
    const mail = Number(readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('mail:'))!.split(':')[2]);
    const s = statSync(conf);
    expect({ mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }).toEqual({ mode: 0o640, uid: 0, gid: mail });
    // another user cannot read it; Cyrus (cyrus:mail) can
    const asNobody = await execa('setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', 'cat', conf], { reject: false });
    expect(asNobody.exitCode).not.toBe(0);
    expect(asNobody.stderr).toMatch(/Permission denied/);
    const asCyrus = await execa('setpriv', ['--reuid=cyrus', '--regid=mail', '--init-groups', 'cat', conf], { reject: false });
    expect(asCyrus.stdout).toContain('sync_password');
    // the slot's sasldb holds the same password: no bits for others either
    expect(statSync(join(meta('m1', GOOD), 'conf', 'sasldb2')).mode & 0o007).toBe(0);
  });

  it('refuses to start an agent whose password file others may read, naming the file and the fix', async () => {
    const loose = join(dir, 'loose-password');
    writeFileSync(loose, `${PASSWORD}\n`);
    chmodSync(loose, 0o644);
    const args = [BIN.agent, '--machine', 'm9', '--insecure', '--auth', 'sasldb', '--sync-password-file', loose, '--state-dir', join(dir, 'agents', 'm9')];
    const run = await execa('node', args, { reject: false, timeout: 30_000 });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toContain(`--sync-password-file ${loose} has mode 0644: group or others may read the replication password`);
    expect(run.stderr).toContain(`hint: chmod 600 ${loose}`);
    expect(run.stdout + run.stderr).not.toContain(PASSWORD);
  });

  it("refuses a slot whose path is outside its machine's declared disks, and creates nothing there", async () => {
    const slot = `${ASTRAY}-m2`;
    await cluster.waitSlotState(slot, 'FAILED', 30_000);
    const refused = await waitFor(`an unsafe-path event of ${slot}`, async () => (await events(slot)).find((e) => e.kind === 'slot.unsafe-path'), 15_000, 200);
    expect(refused.reason).toContain(`${astrayPath}/meta`);
    expect(refused.reason).toMatch(/not under any disk declared for this machine/);
    expect((await cluster.slot(slot)).stateReason).toMatch(/not under any disk declared/);
    expect(existsSync(join(dir, 'astray'))).toBe(false);
  });

  it('fails a slot whose META/run was swapped for a symlink, without touching what it points to', async () => {
    const slot = `${GOOD}-m2`;
    const runDir = join(meta('m2', GOOD), 'run');
    expect((await cluster.slotctl(['slot', 'stop', slot])).exitCode).toBe(0);
    await cluster.waitSlotState(slot, 'STOPPED', 30_000);
    // a fresh root-owned directory with a root-owned file: what Cyrus would like root to hand over
    const target = mkdtempSync(join(tmpdir(), 'slotctl-root-only-'));
    chmodSync(target, 0o700);
    writeFileSync(join(target, 'keep'), 'root only\n', { mode: 0o600 });
    const before = [statSync(target), statSync(join(target, 'keep'))].map((s) => ({ uid: s.uid, gid: s.gid, mode: s.mode }));
    try {
      rmSync(runDir, { recursive: true, force: true });
      symlinkSync(target, runDir);
      const refusals = async (count: number) => {
        const found = await waitFor(`unsafe-path event ${count} of ${slot}`, async () => {
          const seen = (await events(slot)).filter((e) => e.kind === 'slot.unsafe-path');
          return seen.length >= count ? seen : undefined;
        }, 30_000, 200);
        expect(found[0]!.reason).toContain(`${runDir} is a symlink`);
        expect(cyrusOf('m2', GOOD)).toEqual([]);
        // still root's, with the same modes: neither chowned nor chmodded, and nothing written into it
        expect([statSync(target), statSync(join(target, 'keep'))].map((s) => ({ uid: s.uid, gid: s.gid, mode: s.mode }))).toEqual(before);
        expect(readFileSync(join(target, 'keep'), 'utf8')).toBe('root only\n');
        expect(existsSync(join(target, 'master.pid'))).toBe(false);
      };
      expect(before[0]!.uid).toBe(0);
      // a start prepares the directories again
      expect((await cluster.slotctl(['slot', 'start', slot])).exitCode).toBe(0);
      await cluster.waitSlotState(slot, 'FAILED', 30_000);
      await refusals(1);
      expect((await cluster.slot(slot)).stateReason).toContain(`${runDir} is a symlink`);
      // so does the config write of a restarted agent (where root used to mkdir and chown META/run)
      await cluster.agents.get('m2')!.stop(20_000);
      cluster.startAgent('m2', { syncPasswordFile: passwordFile });
      await refusals(2);

      // the hint works: the link removed, a start brings the slot back
      rmSync(runDir);
      expect((await cluster.slotctl(['slot', 'start', slot])).exitCode).toBe(0);
      await cluster.waitSlotState(slot, 'SERVING', 60_000);
      expect(statSync(runDir).isDirectory()).toBe(true);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });
});
