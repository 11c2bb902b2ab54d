// bench/cleanup: one slot with --messages expunged messages and --folders deleted folders (delayed expunge and
// delete keep them on disk), cleaned with retention 0 through slotctl on real Cyrus (loopback, one machine pair).
// Prints the cleanup's duration and the space freed, and the IMAP latency (connect, login, SELECT INBOX, logout) of
// a neighbouring slot on the same disk while cyr_expire runs (only the round trips that started and ended inside the
// run the agent reports: not the scheduling and measuring around it), against the same latency before it.
// Writes bench/results/cleanup.json.
//
//   npm run bench:cleanup -- [--messages 10000] [--folders 100]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { LocalCluster, ROOT, waitFor } from '../tools/local-cluster.js';
import { appendToFolder, deleteFolder, deliverMany, imapClient } from '../test/support/mail.js';
import { removeDir, tempDir, twoMachineCluster } from '../test/support/fixtures.js';
import { benchArg } from './common.js';

const messages = Number(benchArg('messages', '10000'));
const folders = Number(benchArg('folders', '100'));
const dir = tempDir('cleanup-bench');
const cluster = new LocalCluster({ dir });
const NET = 45;
const target = 'cb01-m1';
const neighbour = `127.${NET}.1.2`; // cb02-m1, on the same declared disk

interface Row {
  slot: string;
  last: { ms: number; freedBytes: number; ok: boolean; startedAt: string; finishedAt: string } | null;
  waitingBytes: number;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! * 10) / 10 : NaN;
};

/** IMAP round trips against the neighbour until `stop` resolves: when each started and ended (wall clock), and its ms. */
async function probe(until: () => boolean): Promise<{ from: number; to: number; ms: number }[]> {
  const out: { from: number; to: number; ms: number }[] = [];
  while (!until()) {
    const from = Date.now();
    const t = performance.now();
    const c = imapClient(neighbour, 'nina', 'x', 1143);
    await c.connect();
    await c.mailboxOpen('INBOX');
    await c.logout();
    out.push({ from, to: Date.now(), ms: performance.now() - t });
  }
  return out;
}

try {
  await cluster.startCoordinator();
  const file = `${twoMachineCluster(dir, NET, 'cb').replace(`  - { name: m1, address: 127.${NET}.0.1 }`, `  - { name: m1, address: 127.${NET}.0.1, disks: [{ name: d0, path: ${dir}/srv/m1, class: hdd }] }`)}`;
  const apply = (retention: string) => cluster.slotctl(['cluster', 'apply', '-'], `${file}cleanup: { expunged: '${retention}', deleted: '${retention}', duplicates: '0', timeout: 30m }\n`);
  await apply('30d');
  cluster.startAgent('m1', { diskReportInterval: '2s' });
  cluster.startAgent('m2', { diskReportInterval: '2s' });
  await cluster.waitForMachines('up', ['m1', 'm2']);
  await cluster.waitSlotState(target, 'SERVING');
  const ip = `127.${NET}.3.1`;
  console.log(`filling ${target}: ${messages} messages (then expunged) and ${folders} folders of 10 messages (then deleted)`);
  const users = Array.from({ length: 10 }, (_, i) => `u${i}`);
  await deliverMany(ip, 2003, users.map((u) => ({ user: u, subject: 'first' })), 1);
  await deliverMany(ip, 2003, Array.from({ length: messages }, (_, i) => ({ user: users[i % users.length]!, subject: 'gone' })), 4, 2000);
  for (let f = 0; f < folders; f++) for (let k = 0; k < 10; k++) await appendToFolder(ip, 1143, users[f % users.length]!, `F${f}`, `f${f} ${k}`);
  await deliverMany(`127.${NET}.3.2`, 2003, [{ user: 'nina', subject: 'hello' }], 1);
  for (const u of users) {
    const c = imapClient(ip, u, 'x', 1143);
    await c.connect();
    await c.mailboxOpen('INBOX');
    const uids = (await c.search({ subject: 'gone' }, { uid: true })) || [];
    if (uids.length) await c.messageDelete(uids, { uid: true });
    await c.logout();
  }
  for (let f = 0; f < folders; f++) await deleteFolder(ip, 1143, users[f % users.length]!, `F${f}`);
  const waiting = await waitFor('the agent to measure what waits', async () => {
    const r = (JSON.parse((await cluster.slotctl(['cleanup', 'status', '--json'])).stdout) as Row[]).find((x) => x.slot === target)!;
    return r.waitingBytes > messages * 1000 ? r.waitingBytes : undefined;
  }, 120_000, 1000);

  await apply('0');
  let running = false;
  const baseline = (await probe((() => { const end = Date.now() + 5000; return () => Date.now() > end; })())).map((x) => x.ms);
  running = true;
  const around: { from: number; to: number; ms: number }[] = [];
  const measuring = probe(() => !running).then((xs) => around.push(...xs));
  const run = await cluster.slotctl(['cleanup', 'run', '--slot', target, '--wait', '--json', '--timeout', '30m']);
  running = false;
  await measuring;
  if (run.exitCode !== 0) throw new Error(`cleanup failed: ${run.stdout}${run.stderr}`);
  const row = (JSON.parse(run.stdout) as Row[])[0]!;
  const [ranFrom, ranTo] = [Date.parse(row.last!.startedAt), Date.parse(row.last!.finishedAt)];
  const during = around.filter((x) => x.from >= ranFrom && x.to <= ranTo).map((x) => x.ms);
  if (baseline.length === 0 || during.length === 0) throw new Error(`too few neighbour samples: ${baseline.length} before, ${during.length} while cyr_expire ran (${ranTo - ranFrom} ms)`);
  const result = {
    benchmark: 'cleanup',
    at: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
    expungedMessages: messages,
    deletedFolders: folders,
    waitingBytesBefore: waiting,
    cleanupMs: row.last!.ms,
    freedBytes: row.last!.freedBytes,
    neighbourImapMs: { window: 'during = round trips that started and ended while cyr_expire ran (its start and end as the agent reported them)', before: { p50: percentile(baseline, 50), p99: percentile(baseline, 99), samples: baseline.length }, during: { p50: percentile(during, 50), p99: percentile(during, 99), samples: during.length } },
  };
  console.log(
    `\ncleanup of ${target} (${messages} expunged messages, ${folders} deleted folders, ${(waiting / 1e6).toFixed(1)} MB waiting): ${(row.last!.ms / 1000).toFixed(2)} s, ${(row.last!.freedBytes / 1e6).toFixed(1)} MB freed` +
      `\nneighbour slot on the same disk, IMAP connect+login+select: before p50 ${result.neighbourImapMs.before.p50} ms / p99 ${result.neighbourImapMs.before.p99} ms (${baseline.length}); during p50 ${result.neighbourImapMs.during.p50} ms / p99 ${result.neighbourImapMs.during.p99} ms (${during.length})`,
  );
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'cleanup.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cluster.stopAll();
  removeDir(dir);
}
