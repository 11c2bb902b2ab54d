// bench/reseed: the full initial sync of a new replica (re-replication after `slotctl machine retire`), on the
// namespace cluster with real Cyrus: one store gets --messages messages of --bytes bytes over 20 users, its
// replica's machine is crashed and retired, and the new replica on the third machine is seeded by the master
// (sync_client -u, in batches) and verified. Prints the seed step's time, messages/s and MB/s (bytes on the new
// replica's data partition), and the whole re-replication. Writes bench/results/reseed.json.
//
//   npm run bench:reseed -- [--messages 10000] [--bytes 4000]
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg } from './common.js';

const messages = Number(benchArg('messages', '10000'));
const bytes = Number(benchArg('bytes', '4000'));
const dir = tempDir('reseed-bench');
const cluster = new NetnsCluster({ dir, id: 'w', storePrefix: 'w', machines: 3, slotsPerMachine: 2, log: (l) => console.log(`  ${l}`) });
const stopSyslogd = stopSyslogdStartedAfterNow();
const users = Array.from({ length: 20 }, (_, i) => `user${i}`);

interface StoreJson {
  name: string;
  serviceIp: string;
  master: { name: string; machine: string; state: string; role: string; backlog?: { files: number } };
  replica: { name: string; machine: string };
}
interface OperationJson {
  id: string;
  store: string;
  state: string;
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

  await cluster.crash('m2');
  await waitFor('m2 stores to fail over', async () => ((await stores()).every((s) => s.master.machine !== 'm2' && s.master.state === 'SERVING') ? true : undefined), 60_000, 250);
  const started = Date.now();
  const retire = await cluster.slotctl(['machine', 'retire', 'm2', '--no-wait', '--json']);
  if (retire.exitCode !== 0) throw new Error(`retire failed: ${retire.stderr || retire.stdout}`);
  const op = (JSON.parse(retire.stdout) as OperationJson[]).find((o) => o.store === target.name)!;
  const done = await waitFor('the re-replication to end', async () => {
    const o = await cluster.slotctlJson<OperationJson>(['operations', 'show', op.id]);
    return o.state === 'running' ? undefined : o;
  }, 900_000, 500);
  if (done.state !== 'succeeded') throw new Error(`re-replication ${done.state}: ${done.error}`);
  const at = (step: string) => Date.parse(done.steps.find((s) => s.step === step)!.at);
  const seedMs = at('verify') - at('seed');
  const verifyMs = at('done') - at('verify');
  const totalMs = Date.parse(done.updatedAt) - started;
  const seeded = /(\d+) message\(s\) in (\d+) ms/.exec(done.steps.find((s) => s.step === 'verify')!.reason);
  const copied = seeded ? Number(seeded[1]) : messages;
  const agentMs = seeded ? Number(seeded[2]) : seedMs;
  const after = (await stores()).find((s) => s.name === target.name)!;
  const dataDir = join(dir, 'srv', after.replica.machine, target.name, 'data');
  const onDisk = Number(execFileSync('du', ['-sb', dataDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\t')[0]);
  const result = {
    benchmark: 'reseed',
    at: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
    mode: 'sync_client -u, 50 users per call',
    messages: copied,
    bytesPerMessage: bytes,
    bytesOnNewReplica: onDisk,
    seedMs: agentMs,
    seedStepMs: seedMs,
    verifyMs,
    totalMs,
    messagesPerSecond: Math.round((copied / agentMs) * 1000),
    mbPerSecond: Math.round((onDisk / 1e6 / (agentMs / 1000)) * 10) / 10,
  };
  console.log(
    `\nfull initial sync of ${copied} messages (${(onDisk / 1e6).toFixed(1)} MB on the new replica ${after.replica.name}): ${agentMs} ms → ${result.messagesPerSecond} messages/s, ${result.mbPerSecond} MB/s` +
      `\nverification (every mailbox on both slots): ${verifyMs} ms; the whole re-replication from slotctl machine retire: ${totalMs} ms`,
  );
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'reseed.json'), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await cluster.destroy();
  stopSyslogd();
  removeDir(dir);
}
