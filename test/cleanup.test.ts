// Per-slot cleanup with real Cyrus on loopback: two machines, two stores (each machine master of one). Delayed delete
// and delayed expunge keep deleted folders and expunged messages on master and replica alike until cyr_expire runs
// on each; retentions come from the cluster file's `cleanup:` section. m1's two slots share one declared disk: they
// never clean at the same time. A cleanup asked during a switchover waits for it; a failing cyr_expire is reported
// with its error and changes nothing else.
import { readdirSync } from 'node:fs';
import { execa } from 'execa';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { summarizeAllMailboxes } from '../packages/agent/src/cyrus/mailboxes.js';
import { runCyrExpire } from '../packages/agent/src/cleanup/expire.js';
import { appendToFolder, deleteFolder, deliver, expungeSubject, folderSubjects, inboxSubjects } from './support/mail.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { expectSameMail } from './support/same-mail.js';

const dir = tempDir('cleanup');
const cluster = new LocalCluster({ dir });
const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const STORE = `${PREFIX}01`; // master on m1, replica on m2
const OTHER = `${PREFIX}02`; // master on m2, replica on m1
const BROKEN = `${OTHER}-m2`; // its agent runs cyr_expire with a config path that does not exist

interface CleanupRow {
  slot: string;
  machine: string;
  running: { op: string; since: string } | null;
  last: { startedAt: string; finishedAt: string; ok: boolean; exitCode: number; error: string; tail: string[]; freedBytes: number } | null;
  waitingBytes: number;
}

function clusterFile(retention: string): string {
  // m1 declares one disk holding both its slots; m2 declares none (the whole machine counts as one disk)
  const base = twoMachineCluster(dir, NET, PREFIX).replace(`  - { name: m1, address: 127.${NET}.0.1 }`, `  - { name: m1, address: 127.${NET}.0.1, disks: [{ name: d0, path: ${dir}/srv/m1, class: hdd }] }`);
  return `${base}cleanup: { expunged: '${retention}', deleted: '${retention}', duplicates: '0', parallel: 2, timeout: 2m }\n`;
}

const apply = async (retention: string) => {
  const r = await cluster.slotctl(['cluster', 'apply', '-'], clusterFile(retention));
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
};
const dataPath = (slot: string) => join(dir, 'srv', slot.split('-')[1]!, slot.split('-')[0]!, 'data');
/** Message files (`N.`) under a data partition (Cyrus 3.6 keeps a deleted folder's files in place until cleanup). */
function messageFiles(root: string): number {
  let n = 0;
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.isFile() && /^\d+\.$/.test(e.name)) n++;
    }
  };
  walk(root);
  return n;
}
/** Delayed-deleted folders the slot still holds, as mbexamine lists them (DELETED.user.ann.Old.5F…). */
const deletedFolders = async (slot: string) =>
  (await summarizeAllMailboxes(join(dataPath(slot), '..', 'meta', 'etc', 'imapd.conf'))).map((m) => m.name).filter((n) => n.startsWith('DELETED.'));
const status = async () => JSON.parse((await cluster.slotctl(['cleanup', 'status', '--json'])).stdout) as CleanupRow[];
const run = async (args: string[]) => cluster.slotctl(['cleanup', 'run', ...args, '--wait', '--json']);
const serviceIp = (store: string) => `127.${NET}.3.${store === STORE ? 1 : 2}`;
const slotIp = (slot: string) => `127.${NET}.${slot.endsWith('m1') ? 1 : 2}.${slot.startsWith(STORE) ? 1 : 2}`;

beforeAll(async () => {
  await cluster.startCoordinator();
  await apply('7d');
  cluster.startAgent('m1', { diskReportInterval: '1s' });
  cluster.startAgent('m2', { diskReportInterval: '1s', env: { SLOTCTL_TEST_CYR_EXPIRE_BREAK: BROKEN } });
  await cluster.waitForMachines('up', ['m1', 'm2']);
  for (const s of [`${STORE}-m1`, `${STORE}-m2`, `${OTHER}-m1`, `${OTHER}-m2`]) await cluster.waitSlotState(s, 'SERVING');
}, 120_000);

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('per-slot cleanup with real Cyrus', () => {
  it('keeps a deleted folder and expunged messages under a 7-day retention, removes them on master and replica with 0, and replication goes on', async () => {
    const master = `${STORE}-m1`;
    const replica = `${STORE}-m2`;
    const ip = serviceIp(STORE);
    await deliver(ip, 2003, [{ user: 'ann', subject: 'first' }]);
    for (let i = 0; i < 5; i++) await appendToFolder(ip, 1143, 'ann', 'Old', `old ${i}`);
    await deliver(ip, 2003, Array.from({ length: 6 }, (_, i) => ({ user: 'ann', subject: i < 4 ? 'drop' : `keep ${i}` })));
    await waitFor('the folder and the mail on the replica', async () => ((await folderSubjects(slotIp(replica), 1143, 'ann', 'Old')).length === 5 && (await inboxSubjects(slotIp(replica), 1143, 'ann')).length === 7 ? true : undefined), 20_000, 250);

    expect(await expungeSubject(ip, 1143, 'ann', 'drop')).toBe(4);
    await deleteFolder(ip, 1143, 'ann', 'Old');
    // both slots keep what was deleted and expunged (delayed delete and expunge)
    await waitFor('the deletion to reach the replica', async () => ((await deletedFolders(replica)).length === 1 && (await inboxSubjects(slotIp(replica), 1143, 'ann')).length === 3 ? true : undefined), 20_000, 250);
    for (const s of [master, replica]) {
      expect(await deletedFolders(s), `${s} keeps the deleted folder`).toEqual([expect.stringMatching(/^DELETED\.user\.ann\.Old\./)]);
      expect(messageFiles(dataPath(s)), `${s} keeps the deleted and expunged messages`).toBe(12);
    }
    // the agents report what waits for cleanup
    await waitFor('bytes waiting reported', async () => {
      const rows = (await status()).filter((r) => r.slot === master || r.slot === replica);
      return rows.length === 2 && rows.every((r) => r.waitingBytes > 0) ? true : undefined;
    }, 20_000, 500);

    // a 7-day retention keeps everything
    for (const m of ['m1', 'm2']) {
      const r = await run(['--slot', m === 'm1' ? master : replica]);
      expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    }
    for (const s of [master, replica]) {
      expect(await deletedFolders(s)).toHaveLength(1);
      expect(messageFiles(dataPath(s))).toBe(12);
    }

    // retention 0: gone on the master when its cleanup runs, and on the replica only when its own does
    await apply('0');
    expect((await run(['--slot', master])).exitCode).toBe(0);
    expect(await deletedFolders(master)).toEqual([]);
    expect(messageFiles(dataPath(master))).toBe(3);
    expect(await deletedFolders(replica), 'the replica keeps its copy until it is cleaned itself').toHaveLength(1);
    expect(messageFiles(dataPath(replica))).toBe(12);
    expect((await run(['--slot', replica])).exitCode).toBe(0);
    expect(await deletedFolders(replica)).toEqual([]);
    expect(messageFiles(dataPath(replica))).toBe(3);
    const rows = await status();
    expect(rows.find((r) => r.slot === master)!.last).toMatchObject({ ok: true, exitCode: 0 });
    expect(rows.find((r) => r.slot === master)!.last!.freedBytes).toBeGreaterThan(0);

    // replication goes on: a new message reaches the replica
    await deliver(ip, 2003, [{ user: 'ann', subject: 'after cleanup' }]);
    await waitFor('new mail on the replica', async () => ((await inboxSubjects(slotIp(replica), 1143, 'ann')).includes('after cleanup') ? true : undefined), 20_000, 250);
    // and master and replica hold the same mail, every folder, flags and bytes alike
    await expectSameMail([{ name: STORE, master: ip, replica: slotIp(replica) }], { users: ['ann'] });
  }, 180_000);

  it('never cleans two slots of one disk at the same time', async () => {
    const r = await run(['--machine', 'm1']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const rows = (JSON.parse(r.stdout) as CleanupRow[]).filter((x) => x.machine === 'm1');
    expect(rows).toHaveLength(2);
    const [a, b] = rows.map((x) => x.last!).sort((x, y) => (x.startedAt < y.startedAt ? -1 : 1));
    // policy parallel is 2: only the shared disk d0 keeps them apart
    expect(b!.startedAt >= a!.finishedAt, `${JSON.stringify(rows.map((x) => [x.slot, x.last!.startedAt, x.last!.finishedAt]))}`).toBe(true);
  }, 120_000);

  it('waits for a switchover of the store before cleaning its slots', async () => {
    const started = await cluster.slotctl(['store', 'switchover', STORE, '--json']);
    expect(started.exitCode, started.stderr).toBe(0);
    const op = JSON.parse(started.stdout) as { id: string };
    const r = await run(['--slot', `${STORE}-m1`]);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const done = JSON.parse((await cluster.slotctl(['operations', 'show', op.id, '--json'])).stdout) as { state: string; updatedAt: string };
    expect(done.state).toBe('succeeded');
    const last = (JSON.parse(r.stdout) as CleanupRow[])[0]!.last!;
    expect(last.startedAt >= done.updatedAt, `cleanup started ${last.startedAt}, switchover ended ${done.updatedAt}`).toBe(true);
    expect((await cluster.slotctl(['store', 'switchover', STORE, '--wait'])).exitCode).toBe(0); // back
  }, 120_000);

  it('reports a failing cyr_expire with its error and touches nothing else', async () => {
    const before = (await cluster.client().listStores()).stores.find((s) => s.name === OTHER)!;
    const r = await run(['--slot', BROKEN]);
    expect(r.exitCode).toBe(1);
    const row = (JSON.parse(r.stdout) as CleanupRow[])[0]!;
    expect(row.last!.ok).toBe(false);
    expect(row.last!.error).toMatch(/cyr_expire exited [1-9]/);
    expect(row.last!.tail.join('\n')).toMatch(/imapd\.conf\.missing/);
    const events = JSON.parse((await cluster.slotctl(['events', '--store', OTHER, '--json'])).stdout) as { kind: string; reason: string }[];
    expect(events.find((e) => e.kind === 'cleanup.failed')?.reason).toMatch(new RegExp(`cyr_expire on ${BROKEN} failed`));
    // the slot still serves, with the same cyrmaster, and the store takes mail
    const after = (await cluster.client().listStores()).stores.find((s) => s.name === OTHER)!;
    expect(after.master!.pid).toBe(before.master!.pid);
    expect(after.health).toBe('ok');
    await deliver(serviceIp(OTHER), 2003, [{ user: 'bob', subject: 'still fine' }]);
    expect(await inboxSubjects(serviceIp(OTHER), 1143, 'bob')).toContain('still fine');
  }, 120_000);

  it('kills a cyr_expire that outlives its timeout and reports it', async () => {
    const log = { info: () => undefined, warn: () => undefined } as unknown as Parameters<typeof runCyrExpire>[0]['log'];
    const meta = join(dataPath(`${STORE}-m1`), '..', 'meta');
    // a cyr_expire that hangs for real: another process holds the lock of the slot's mailbox list (as a long
    // mailbox operation would), so it waits past its timeout whatever the host's speed (a 1 ms timeout raced the
    // run itself on a busy host: CI ci-124)
    const holder = execa('python3', ['-c', 'import fcntl,sys; f=open(sys.argv[1],"r+b"); fcntl.lockf(f,fcntl.LOCK_EX); print("held",flush=True); sys.stdin.read()', join(meta, 'conf', 'mailboxes.db')], { stdin: 'pipe', reject: false });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        void holder.then((r) => reject(new Error(`the lock holder exited: ${r.stderr}`)));
      });
      const report = await runCyrExpire({ op: 'cl-test', imapdConf: join(meta, 'etc', 'imapd.conf'), retention: { expunged: '7d', deleted: '7d', duplicates: '3d' }, timeoutMs: 1500, waiting: async () => 0, log });
      expect(report).toMatchObject({ ok: false, exitCode: -1, error: expect.stringMatching(/did not finish within 2 s: killed/) });
    } finally {
      holder.stdin!.end();
      await holder;
    }
    // the slot serves on
    expect(await inboxSubjects(serviceIp(STORE), 1143, 'ann')).toContain('after cleanup');
  });

  it('shows disk health per partition', async () => {
    const disks = JSON.parse((await cluster.slotctl(['disk', 'status', '--json'])).stdout) as { slot: string; role: string; usedPercent: number; level: string; freeBytes: number }[];
    expect(disks.filter((d) => d.slot === `${STORE}-m1`).map((d) => d.role).sort()).toEqual(['data', 'meta']);
    expect(new Set(disks.map((d) => d.slot)), 'every slot measured').toEqual(new Set([`${STORE}-m1`, `${STORE}-m2`, `${OTHER}-m1`, `${OTHER}-m2`]));
    for (const d of disks) expect(d.freeBytes).toBeGreaterThan(0);
    const text = await cluster.slotctl(['disk', 'status']);
    expect(text.stdout).toMatch(/partition[\s\S]*deleted folders[\s\S]*cu01-m1/);
  });
});
