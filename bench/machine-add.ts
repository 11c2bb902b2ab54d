// bench/machine-add: an empty machine joins a cluster of five machines with eight slots each (`slotctl machine add M
// --apply`), on the namespace cluster with real Cyrus, under mail load: the replicas moved to it (each seeded from
// its master while the old replica keeps replicating) and the switchovers that give it its share of masters, as one
// operation. Prints its total time, the moves and switchovers with each one's time, the bytes copied, what the
// sampled stores did (never fewer than two copies), and balance and fan-out before and after. Writes
// bench/results/machine-add.json.
//
//   npm run bench:machine-add -- [--messages-per-store 500] [--bytes 4000] [--rate 25]
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, writeResult } from './common.js';

const perStore = Number(benchArg('messages-per-store', '500'));
const bytes = Number(benchArg('bytes', '4000'));
const rate = Number(benchArg('rate', '25'));
const dir = tempDir('machine-add-bench');
// m1…m5 hold 20 stores (each machine 4 masters, their replicas on the next machines round robin); m6 is declared, empty
const full = ['m1', 'm2', 'm3', 'm4', 'm5'];
const stores = Array.from({ length: 20 }, (_, i) => ({ name: `p${String(i + 1).padStart(2, '0')}`, master: full[i % 5]!, replica: full[(i % 5 + 1 + Math.floor(i / 5)) % 5]! }));
const cluster = new NetnsCluster({ dir, id: 'p', storePrefix: 'p', machines: 6, slotsPerMachine: 8, stores, slotPools: true, log: (l) => console.log(`  ${l}`) });
const stopSyslogd = stopSyslogdStartedAfterNow();
const users = ['ann', 'ben', 'cat', 'dan'];

interface StoreJson { name: string; serviceIp: string; master: { machine: string; backlog?: { files: number } }; replica: { machine: string } }
interface OperationJson { id: string; kind: string; store: string; state: string; step: string; error: string; waiting: string; createdAt: string; updatedAt: string; children: OperationJson[] }
interface Watched { operation: OperationJson; samples: number; copies: string[]; paused: string[]; most: number; timedOut?: boolean }
interface FanOutJson { target: number; before: { machine: string; fanOut: number; target: number; masters: number; replicas: number }[] }

const list = () => cluster.slotctlJson<StoreJson[]>(['store', 'list']);

try {
  await cluster.start({ servingTimeoutMs: 300_000 });
  const all = await list();
  console.log(`${all.length} stores on m1…m5; delivering ${perStore} messages of ~${bytes} bytes to each (${users.length} users)`);
  const t0 = Date.now();
  // each user's INBOX made by one first delivery (parallel first deliveries race to create it: 451 already exists)
  for (const user of users) await cluster.mail('deliver', all.map((s) => ({ host: s.serviceIp, user, subject: 'first' })));
  await cluster.mail('bulk', all.map((s) => ({ host: s.serviceIp, users, count: perStore, subject: 'bulk', bytes })));
  console.log(`  delivered ${perStore * all.length} in ${Date.now() - t0} ms`);
  await waitFor('replication to catch up', async () => ((await list()).every((s) => s.master.backlog?.files === 0) ? true : undefined), 300_000, 1000);
  await sleep(6000); // a disk report of every slot (room checks use them)

  const fanBefore = await cluster.slotctlJson<FanOutJson>(['plan', 'fanout']);
  const plan = await cluster.slotctlJson<{ replicaMoves: { store: string; from: string }[]; switchovers: { store: string }[]; sentence: string }>(['machine', 'add', 'm6']);
  console.log(`plan: ${plan.sentence}`);
  const load = cluster.startLoad('load-machine-add', all.map((s) => ({ store: s.name, host: s.serviceIp, users })), rate);
  await sleep(2000);
  const started = Date.now();
  const reply = await cluster.slotctlJson<{ operation: OperationJson }>(['machine', 'add', 'm6', '--apply', '--no-wait']);
  const driver = cluster.operationDriver();
  const watched = await driver.run<Watched>({ watch: reply.operation.id, limitMs: 1_800_000 }).finally(() => driver.close());
  const totalMs = Date.now() - started;
  const summary = await load.stop();
  if (watched.operation.state !== 'succeeded') throw new Error(`machine add ${watched.operation.state}: ${watched.operation.error}`);
  const children = watched.operation.children.map((c) => ({ kind: c.kind, store: c.store, state: c.state, ms: Date.parse(c.updatedAt) - Date.parse(c.createdAt) }));
  const after = await list();
  const fanAfter = await cluster.slotctlJson<FanOutJson>(['plan', 'fanout']);
  const rebalance = await cluster.slotctlJson<{ moves: unknown[]; after: Record<string, number> }>(['plan', 'rebalance']);
  const m6 = { masters: after.filter((s) => s.master.machine === 'm6').length, replicas: after.filter((s) => s.replica.machine === 'm6').length };
  const result = {
    benchmark: 'machine-add',
    at: new Date().toISOString(),
    host: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
    cluster: { machines: 5, slotsPerMachine: 8, stores: all.length, messagesPerStore: perStore, bytesPerMessage: bytes, loadPerSecond: rate },
    totalMs,
    moves: children.filter((c) => c.kind === 'move-replica').length,
    switchovers: children.filter((c) => c.kind === 'switchover').length,
    children,
    newMachine: m6,
    load: { acked: summary.acked, rejected: summary.rejected, inFlight: summary.inFlight },
    sampled: { samples: watched.samples, belowTwoCopies: watched.copies.length, pausedOutsideSwitchover: watched.paused.length, mostChildrenAtOnce: watched.most },
    balancedAfter: rebalance.moves.length === 0,
    fanOut: { target: fanAfter.target, before: Object.fromEntries(fanBefore.before.map((m) => [m.machine, m.fanOut])), after: Object.fromEntries(fanAfter.before.map((m) => [m.machine, m.fanOut])) },
  };
  console.log(
    `\nmachine add m6 to 5 machines × 8 slots (${all.length} stores, ${perStore} messages each, ${rate} msg/s load): ${result.moves} replica move(s) + ${result.switchovers} switchover(s) in ${totalMs} ms` +
      `\n  children: ${children.map((c) => `${c.kind} ${c.store} ${c.ms} ms`).join(', ')}` +
      `\n  m6 now ${m6.masters} master(s), ${m6.replicas} replica(s); balanced: ${result.balancedAfter}; fan-out after ${JSON.stringify(result.fanOut.after)} (target ${fanAfter.target})` +
      `\n  sampled every store ${watched.samples} times: ${watched.copies.length} below two copies, ${watched.paused.length} paused outside a switchover; at most ${watched.most} children at once` +
      `\n  load: ${summary.acked} acknowledged, ${summary.rejected} rejected, ${summary.inFlight} in flight at the end`,
  );
  console.log(`wrote ${writeResult('machine-add', result)}`);
} finally {
  await cluster.destroy();
  stopSyslogd();
  removeDir(dir);
}
