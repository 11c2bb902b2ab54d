// bench/move-replica: a replica moved between two live machines (`slotctl store move-replica`), on the namespace
// cluster with real Cyrus: one store gets --messages messages of --bytes bytes over 20 users, then its replica moves
// from m2 to m3 while the old one keeps replicating. Prints the move's time by step, the seed's messages/s and MB/s
// (bytes on the new replica's data partition), and how long the master's IMAP greeting takes (a new connection to
// its service address, every 50 ms) beside the seed and, for comparison, before the move. Writes
// bench/results/move-replica.json.
//
// With --seed-rate-limit (e.g. 2MB), the agents pace seeds to that average (sync_client has no limit of its own):
// the result (bench/results/move-replica-limited.json) shows the rate reached.
//
//   npm run bench:move-replica -- [--messages 10000] [--bytes 4000] [--probe-seconds 6] [--seed-rate-limit 2MB]
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, startImapProbe, writeResult, type ProbeSummary } from './common.js';

const messages = Number(benchArg('messages', '10000'));
const bytes = Number(benchArg('bytes', '4000'));
const probeMs = Number(benchArg('probe-seconds', '6')) * 1000;
const limit = benchArg('seed-rate-limit', '');
const dir = tempDir('move-replica-bench');
const cluster = new NetnsCluster({ dir, id: 'x', storePrefix: 'x', machines: 3, slotsPerMachine: 2, ...(limit ? { agentArgs: ['--seed-rate-limit', limit] } : {}), log: (l) => console.log(`  ${l}`) });
const stopSyslogd = stopSyslogdStartedAfterNow();
const users = Array.from({ length: 20 }, (_, i) => `user${i}`);

interface StoreJson {
  name: string;
  serviceIp: string;
  master: { name: string; machine: string; backlog?: { files: number } };
  replica: { name: string; machine: string; ip: string };
}
interface OperationJson {
  id: string;
  state: string;
  step: string;
  error: string;
  createdAt: string;
  updatedAt: string;
  steps: { step: string; at: string; reason: string }[];
}

const stores = () => cluster.slotctlJson<StoreJson[]>(['store', 'list']);

try {
  await cluster.start();
  const target = (await stores()).find((s) => s.master.machine === 'm1' && s.replica.machine === 'm2')!;
  console.log(`store ${target.name}: master on m1, replica on m2; delivering ${messages} messages of ~${bytes} bytes to ${users.length} users`);
  const t0 = Date.now();
  await cluster.mail('deliver', users.map((user) => ({ host: target.serviceIp, user, subject: 'first' })));
  await cluster.mail('bulk', [{ host: target.serviceIp, users, count: messages, subject: 'bulk', bytes }]);
  console.log(`  delivered in ${Date.now() - t0} ms`);
  await waitFor('replication to catch up', async () => ((await stores()).find((s) => s.name === target.name)!.master.backlog?.files === 0 ? true : undefined), 300_000, 1000);

  // the master's greeting before the move
  const before = await startImapProbe(cluster, target.serviceIp, 50, probeMs);
  const quiet = await before.summary();

  const started = Date.now();
  const run = await cluster.slotctl(['store', 'move-replica', target.name, '--to', 'm3', '--ip', '10.231.6.1', '--no-wait', '--json']);
  if (run.exitCode !== 0) throw new Error(`move-replica failed to start: ${run.stderr || run.stdout}`);
  const op = JSON.parse(run.stdout) as OperationJson;
  await waitFor('the seed to begin', async () => (['seed', 'verify', 'switch', 'catch-up', 'confirm', 'done'].includes((await cluster.slotctlJson<OperationJson>(['operations', 'show', op.id])).step) ? true : undefined), 120_000, 100);
  const probeFrom = Date.now();
  const during = await startImapProbe(cluster, target.serviceIp, 50, probeMs);
  const seeding = await during.summary();
  // what the operator reads while it copies: the seed's progress (users, MB, messages, time left)
  const progress: string[] = [];
  const done = await waitFor('the move to end', async () => {
    const o = await cluster.slotctlJson<OperationJson & { waiting: string }>(['operations', 'show', op.id]);
    if (o.step === 'seed' && / user\(s\), /.test(o.waiting) && progress.at(-1) !== o.waiting) progress.push(o.waiting);
    return o.state === 'running' ? undefined : o;
  }, 1_800_000, 500);
  if (done.state !== 'succeeded') throw new Error(`move ${done.state}: ${done.error}`);
  await sleep(500);
  const at = (step: string) => Date.parse(done.steps.find((s) => s.step === step)!.at);
  const seedFrom = at('seed');
  const seedTo = at('verify');
  const seeded = /(\d+) message\(s\) in (\d+) ms/.exec(done.steps.find((s) => s.step === 'verify')!.reason);
  const copied = seeded ? Number(seeded[1]) : messages;
  const agentMs = seeded ? Number(seeded[2]) : seedTo - seedFrom;
  const dataDir = join(dir, 'srv', 'm3', target.name, 'data');
  const onDisk = Number(execFileSync('du', ['-sb', dataDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\t')[0]);
  const overlapMs = Math.max(0, Math.min(seedTo, probeFrom + probeMs) - Math.max(seedFrom, probeFrom));
  const greet = (s: ProbeSummary | undefined) => ({ attempts: s?.greeted ?? 0, p50Ms: s?.greetP50Ms ?? null, p99Ms: s?.greetP99Ms ?? null, maxMs: s?.greetMaxMs ?? null });
  const result = {
    benchmark: 'move-replica',
    at: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
    messages: copied,
    bytesPerMessage: bytes,
    bytesOnNewReplica: onDisk,
    totalMs: Date.parse(done.updatedAt) - started,
    steps: { createMs: at('create') - started, seedStepMs: seedTo - seedFrom, verifyMs: at('switch') - seedTo, switchMs: at('catch-up') - at('switch'), catchUpAndConfirmMs: at('done') - at('catch-up') },
    seedMs: agentMs,
    messagesPerSecond: Math.round((copied / agentMs) * 1000),
    mbPerSecond: Math.round((onDisk / 1e6 / (agentMs / 1000)) * 10) / 10,
    masterGreeting: { before: greet(quiet), duringSeed: greet(seeding), probeMs, probeOverlapWithSeedMs: overlapMs },
    seedProgressSeen: progress,
    seedRateLimit: limit || 'none',
  };
  console.log(
    `\nmove of ${target.name}'s replica m2 → m3 (${copied} messages, ${(onDisk / 1e6).toFixed(1)} MB on the new replica): ${result.totalMs} ms in all` +
      `\n  steps: ${Object.entries(result.steps).map(([k, v]) => `${k} ${v}`).join(', ')}` +
      `\n  seed: ${agentMs} ms → ${result.messagesPerSecond} messages/s, ${result.mbPerSecond} MB/s` +
      `\n  master's IMAP greeting before: p50 ${result.masterGreeting.before.p50Ms} ms, p99 ${result.masterGreeting.before.p99Ms} ms (${result.masterGreeting.before.attempts} attempts)` +
      `\n  progress read during the seed (${progress.length}): ${progress.length ? `${progress[0]} … ${progress.at(-1)}` : 'none'}` +
      `\n  beside the seed: p50 ${result.masterGreeting.duringSeed.p50Ms} ms, p99 ${result.masterGreeting.duringSeed.p99Ms} ms (${result.masterGreeting.duringSeed.attempts} attempts; ${overlapMs} of the probe's ${probeMs} ms inside the seed)`,
  );
  console.log(`wrote ${writeResult(limit ? 'move-replica-limited' : 'move-replica', result)}`);
} finally {
  await cluster.destroy();
  stopSyslogd();
  removeDir(dir);
}
