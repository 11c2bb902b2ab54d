// Checks before a slot starts, with real agents and Cyrus (issue 19): a slot whose partitions lie under a directory
// the cyrus user cannot traverse is failed with a sentence naming that directory, its mode and the fix — no
// cyrmaster started, no crash loop — and starts once the directory is opened, without an agent restart. A cyrmaster
// that exits at start says why in its own words (its syslog lines), not only with its exit code.
import { chmodSync, mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { processCommandLines, removeDir, tempDir } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('preflight');
const cluster = new LocalCluster({ dir });
const STORE = `${PREFIX}01`;
const LOCKED_SLOT = `${STORE}-m2`;
/** Root's, mode 0700: Cyrus cannot reach m2's slot below it. */
const locked = join(dir, 'srv', 'm2', 'locked');
const root = (m: string) => (m === 'm2' ? join(locked, STORE) : join(dir, 'srv', m, STORE));
const isRoot = process.getuid?.() === 0;
const cyrusUid = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('cyrus:'))?.split(':')[2]);

const clusterFile = () =>
  [
    'machines:',
    ...['m1', 'm2'].map((m, i) => `  - { name: ${m}, address: 127.${NET}.0.${i + 1}, disks: [{ name: d0, path: ${join(dir, 'srv', m)}, class: hdd }] }`),
    'stores:',
    `  - name: ${STORE}`,
    `    service_ip: 127.${NET}.3.1`,
    '    master: m1',
    '    slots:',
    ...['m1', 'm2'].map((m, i) => `      - { machine: ${m}, ip: 127.${NET}.${i + 1}.1, data_path: ${root(m)}/data, meta_path: ${root(m)}/meta }`),
    '',
  ].join('\n');

const events = async (slot: string, kind: string) =>
  (JSON.parse((await cluster.slotctl(['events', '--json', '--since', '1h', '--limit', '1000'])).stdout) as { kind: string; slot: string; reason: string }[]).filter((e) => e.slot === slot && e.kind === kind);
const cyrusOf = (slot: string) => processCommandLines().filter((c) => c.includes(join(root(slot.endsWith('m2') ? 'm2' : 'm1'), 'meta', 'etc', 'imapd.conf')));

beforeAll(async () => {
  // (a recursive mkdir would give every parent it creates the same 0700)
  mkdirSync(join(dir, 'srv', 'm2'), { recursive: true, mode: 0o755 });
  mkdirSync(locked, { mode: 0o700 });
  await cluster.startCoordinator();
  const applied = await cluster.slotctl(['cluster', 'apply', '-'], clusterFile());
  expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0);
  for (const m of ['m1', 'm2']) cluster.startAgent(m);
  await cluster.waitSlotState(`${STORE}-m1`, 'SERVING', 60_000);
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe.runIf(isRoot)('checks before a slot starts', () => {
  it('fail a slot Cyrus cannot reach with the directory, its mode and the fix; no cyrmaster, no crash loop; it starts once fixed', async () => {
    const sentence = `the cyrus user (uid ${cyrusUid}) cannot traverse ${locked} (drwx------ root:root): chmod o+x ${locked}, or give it to group mail`;
    await cluster.waitSlotState(LOCKED_SLOT, 'FAILED', 30_000);
    const failed = await cluster.slot(LOCKED_SLOT);
    expect(failed.lastError).toContain(sentence);
    expect(failed.lastError).toMatch(/Cyrus needs it for the slot's imapd\.conf, cyrus\.conf, configdirectory, sync directory, meta partition, data partition/);
    expect(failed.stateReason).toContain(sentence);
    const [event] = await waitFor('a preflight-failed event', async () => {
      const found = await events(LOCKED_SLOT, 'slot.preflight-failed');
      return found.length ? found : undefined;
    }, 15_000, 200);
    expect(event!.reason).toContain(sentence);
    // tried again every few seconds, never as a crash: no cyrmaster, no crash counted, the same event not repeated
    await new Promise((r) => setTimeout(r, 4000));
    expect(cyrusOf(LOCKED_SLOT)).toEqual([]);
    const still = await cluster.slot(LOCKED_SLOT);
    expect({ state: still.state, crashes: still.crashesInWindow }).toEqual({ state: 'FAILED', crashes: 0 });
    expect(await events(LOCKED_SLOT, 'slot.preflight-failed')).toHaveLength(1);
    expect(await events(LOCKED_SLOT, 'slot.cyrmaster-exited')).toEqual([]);

    // the fix the sentence names: the same agent process starts the slot
    const agentPid = cluster.agents.get('m2')!.pid;
    chmodSync(locked, 0o755);
    await cluster.waitSlotState(LOCKED_SLOT, 'SERVING', 30_000);
    expect(cluster.agents.get('m2')!.pid).toBe(agentPid);
    expect((await cluster.slot(LOCKED_SLOT)).lastError).toBe('');
  });

  it('report what a cyrmaster that exits at start said, with the meaning of its exit code', async () => {
    // something the checks do not look at and Cyrus refuses: its PID file is a directory
    const pidFile = join(root('m2'), 'meta', 'run', 'master.pid');
    expect((await cluster.slotctl(['slot', 'stop', LOCKED_SLOT])).exitCode).toBe(0);
    await cluster.waitSlotState(LOCKED_SLOT, 'STOPPED', 30_000);
    rmSync(pidFile, { force: true });
    mkdirSync(pidFile);
    expect((await cluster.slotctl(['slot', 'start', LOCKED_SLOT])).exitCode).toBe(0);
    const words = /^cyrmaster exited with code 71 \(EX_OSERR: [^)]*\) after \d+\.\d s: master: can't open pidfile: Is a directory$/;
    const [exited] = await waitFor('a cyrmaster-exited event', async () => {
      const found = await events(LOCKED_SLOT, 'slot.cyrmaster-exited');
      return found.length ? found : undefined;
    }, 30_000, 200);
    expect(exited!.reason).toMatch(words);
    // the slot's last error says the same (read until it does: the agent restarts it meanwhile, with backoff, and a
    // read between an exit and its report shows the one before)
    await waitFor('the slot\'s last error to carry the exit words', async () => (words.test((await cluster.slot(LOCKED_SLOT)).lastError) ? true : undefined), 30_000, 100);

    rmdirSync(pidFile);
    const state = await waitFor('the crash loop to end', async () => {
      const s = (await cluster.slot(LOCKED_SLOT)).state;
      return s === 'SERVING' || s === 'FAILED' ? s : undefined;
    }, 60_000, 200);
    if (state === 'FAILED') expect((await cluster.slotctl(['slot', 'start', LOCKED_SLOT])).exitCode).toBe(0);
    await cluster.waitSlotState(LOCKED_SLOT, 'SERVING', 30_000);
  });
});
