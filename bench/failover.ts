// bench/failover: from crash(machine) — a power cut: agent, fence and Cyrus killed, the machine off the network — to
// every one of its stores answering `* OK` on its service IP from a peer, seen from the client namespace (probing
// every 5 ms), p50/p99 over --runs runs, broken down into detection (crash → machine declared down), decision
// (→ failover operations created), promotion (→ the database flip) and start (→ the new master answers: service IP
// after the ARP probe, cyrmaster as master). After each run the machine is powered on, its old masters come back as
// replicas (nothing was at risk: no mail during the run) and the stores are switched back. Goal: < 10 s with the
// default lease (5 s); stretch: < 5 s with --lease 2s. With --load N an MTA-like load of N messages/s goes to every
// store for the whole run (the failover figure under load; the machine's stores fail over with deliveries in flight).
// With --ha the coordinators are three over three etcd members (test/cluster/netns-ha.ts) and the leader coordinator
// is killed (SIGKILL) at the same moment as the machine: the new leader must be elected, read the state, admit the
// agents and then fail the machine over (goal: < 15 s with a 2 s etcd lease).
// Writes bench/results/failover.json (failover-LEASE.json, failover-loadN.json, failover-ha.json).
//
//   npm run bench:failover -- [--runs 10] [--lease 5s] [--interval 1s] [--load 25] [--ha]
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '@slotctl/shared';
import { NetnsCluster } from '../test/cluster/netns.js';
import { readLogLines, removeDir, tempDir } from '../test/support/fixtures.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, greetedAt, startImapProbe, type StoreJson } from './common.js';

const runs = Number(benchArg('runs', '10'));
const lease = benchArg('lease', '5s');
const leaseMs = parseDuration(lease, '--lease');
const loadRate = Number(benchArg('load', '0'));
const ha = process.argv.includes('--ha');
// the heartbeat interval: --interval, else a fifth of the lease (at least 200 ms)
const interval = benchArg('interval', `${Math.max(200, Math.round(leaseMs / 5))}ms`);
const dir = tempDir('failover-bench');
const cluster = new NetnsCluster({
  dir,
  id: 'v',
  storePrefix: 'v',
  machines: 5,
  slotsPerMachine: 8,
  coordinatorArgs: ['--lease', lease, '--heartbeat-interval', interval],
  ...(ha ? { ha: { coordinators: 3, etcd: 3, leaderLease: '2s' } } : {}),
  log: (l) => console.log(`  ${l}`),
});
const stopSyslogd = stopSyslogdStartedAfterNow();
const victim = 'm1';

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs), runs: xs.length });

interface EventJson {
  at: string;
  kind: string;
  machine: string;
  store?: string;
}
interface OperationJson {
  kind: string;
  createdAt: string;
}

/** `store list --json` with the replica fields the switch-back waits read. */
type StoreState = StoreJson & { epoch: number; replica: { name: string; state: string; role: string; epochApplied: number } };
const storeList = () => cluster.slotctlJson<StoreState[]>(['store', 'list']);

/**
 * Starts an IMAP probe per service IP in the client namespace, once it sees the store answer; resolves to the first
 * `* OK` after an outage that began after `after`.
 */
async function probe(ip: string, forMs: number) {
  const p = await startImapProbe(cluster, ip, 5, forMs);
  return async (after: number): Promise<number> => {
    const lines = await p.lines();
    // the outage: the first failed attempt begun after the crash (or within 250 ms before it: stamped at its start)
    const down = lines.find((l) => !l.ok && l.at > after - 250);
    const up = down && lines.find((l) => l.ok && l.at > down.at);
    if (!up) throw new Error(`${ip}: no outage and return seen after the crash at ${after}: ${JSON.stringify(lines)}`);
    return greetedAt(up);
  };
}

/** The steps of the start phase, as the promoted replica's agent logged them (after the database flip). */
const START_STEPS = ['applied', 'promote', 'stopping', 'stopped', 'configured', 'ipBound', 'spawned', 'serving'] as const;
type StartSteps = Partial<Record<(typeof START_STEPS)[number], number>>;

/**
 * Where the start phase goes for one store: each step of its promoted replica's agent, ms after the store's flip
 * (the desired slot applied; a promotion in place begun — or, for a restart, the replica's cyrmaster stopping and
 * gone, the master config written —; the service IP bound after the address probe, cyrmaster spawned (restart
 * only), ready: greeting on the slot and LMTP on the service IP).
 */
function startSteps(store: StoreJson, flippedAt: number): StartSteps {
  const at = (l: Record<string, unknown>) => Date.parse(String(l.time));
  const lines = readLogLines(cluster.agentLogFile(store.replica.machine)).filter((l) => at(l) >= flippedAt);
  const first = (match: (l: Record<string, unknown>) => boolean) => {
    const l = lines.find(match);
    return l ? at(l) - flippedAt : undefined;
  };
  const ofSlot = (l: Record<string, unknown>) => l.slot === store.replica.name;
  const event = (e: string) => first((l) => ofSlot(l) && l.event === e);
  const steps: StartSteps = {
    applied: first((l) => ofSlot(l) && l.msg === 'desired slot applied'),
    promote: event('promote'),
    stopping: event('stop'),
    stopped: event('exited'),
    configured: event('configured'),
    ipBound: first((l) => l.msg === 'service IP bound and announced' && l.ip === store.serviceIp),
    spawned: event('start'),
    serving: event('ready'),
  };
  return Object.fromEntries(Object.entries(steps).filter(([, v]) => v !== undefined));
}
const startBreakdown: StartSteps[] = [];

/**
 * When each machine's fence last acted (agents/M/fenced.json's mtime; 0: never). A fence of a machine that was not
 * crashed is a false positive the 2 s lease must not have: counted at start-up and in every run, not left to the logs.
 */
function fencedAt(machine: string): number {
  try {
    return statSync(join(cluster.stateDir(machine), 'fenced.json')).mtimeMs;
  } catch {
    return 0;
  }
}
const fenceStamps = () => new Map(cluster.machines.map((m) => [m, fencedAt(m)]));
const fencesSince = (before: Map<string, number>, except?: string) => [...fenceStamps()].filter(([m, t]) => m !== except && t !== before.get(m)).map(([m]) => m);
const falseFences: string[] = [];

const stalledBack: string[] = [];
/** Runs after which the returning machine needed `machine recover` (changes at risk under load). */
let recovered = 0;

type Run = { totalMs: number; detectionMs: number; decisionMs: number; promotionMs: number; startMs: number; newLeaderMs?: number };

async function oneRun(i: number): Promise<Run> {
  const fencesBefore = fenceStamps();
  const lost = (await storeList()).filter((s) => s.master.machine === victim);
  const probes = await Promise.all(lost.map((s) => probe(s.serviceIp, 25_000 + 4 * leaseMs)));
  const leader = ha ? await cluster.ha!.waitLeader() : undefined;
  const crashedAt = Date.now();
  await Promise.all([cluster.crash(victim), leader ? cluster.ha!.kill(leader) : undefined]);
  const upAt = await Promise.all(probes.map((p) => p(crashedAt)));
  const since = new Date(crashedAt - 1000).toISOString();
  const events = await cluster.slotctlJson<EventJson[]>(['events', '--since', since, '--limit', '1000']);
  const down = Date.parse(events.find((e) => e.kind === 'machine.down' && e.machine === victim)!.at);
  const ops = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all', '--limit', '100'])).filter((o) => o.kind === 'failover' && Date.parse(o.createdAt) >= crashedAt);
  const flips = events.filter((e) => e.kind === 'store.master-changed');
  for (const s of lost) {
    const flip = flips.find((e) => e.store === s.name);
    if (!flip) continue;
    startBreakdown.push(startSteps(s, Date.parse(flip.at)));
    console.log(`    ${s.name}: start phase, ms after its flip ${JSON.stringify(startBreakdown.at(-1))}`);
  }
  if (ops.length !== lost.length || flips.length < lost.length) throw new Error(`run ${i + 1}: ${lost.length} stores lost, ${ops.length} failover operations, ${flips.length} flips`);
  const decided = Math.min(...ops.map((o) => Date.parse(o.createdAt)));
  const flipped = Math.max(...flips.map((e) => Date.parse(e.at)));
  const last = Math.max(...upAt);
  const run: Run = { totalMs: last - crashedAt, detectionMs: down - crashedAt, decisionMs: decided - down, promotionMs: flipped - decided, startMs: last - flipped };
  if (leader) {
    // when the new leader started: its coordinator.started event
    const started = events.filter((e) => e.kind === 'coordinator.started' && Date.parse(e.at) >= crashedAt).map((e) => Date.parse(e.at));
    if (started.length) run.newLeaderMs = Math.min(...started) - crashedAt;
    cluster.ha!.startOne(leader);
  }
  console.log(`  run ${i + 1}: ${lost.length} stores served from peers ${run.totalMs} ms after the crash ${JSON.stringify(run)}`);

  // back to the start: the machine returns (its old masters come back as replicas), the stores move back. Under
  // mail load its old masters held changes the crash kept from their replicas: they return stopped, the machine
  // `returning`, until the operator's `machine recover` brings those changes over (as in the failover test).
  await cluster.powerOn(victim);
  // Every failover holds the old master until its at-risk record closes: by itself when nothing was at risk (idle),
  // through the operator's `machine recover` once the old masters have reported back stopped (under load).
  const next = await waitFor(`${victim}'s old masters to be back as replicas, or ready to be recovered`, async () => {
    const all = await storeList();
    const open = (await cluster.slotctlJson<{ store: string; machine: string }[]>(['store', 'at-risk'])).filter((r) => r.machine === victim);
    if (open.length === 0) return 'nothing at risk';
    const reportedBack = open.every((r) => {
      const s = all.find((x) => x.name === r.store);
      return s && s.replica.role === 'REPLICA' && s.replica.epochApplied === s.epoch && (s.replica.state === 'STOPPED' || s.replica.state === 'CONFIGURED');
    });
    return reportedBack ? 'recover' : undefined;
  }, 90_000, 500);
  if (next === 'recover') {
    const r = await cluster.slotctl(['machine', 'recover', victim]);
    if (r.exitCode !== 0) throw new Error(`machine recover ${victim}: ${r.stdout}${r.stderr}`);
    recovered++;
  }
  await waitFor('every store to have a serving replica at its epoch again', async () => {
    const all = await storeList();
    return all.every((s) => s.replica.state === 'SERVING' && s.replica.role === 'REPLICA' && s.replica.epochApplied === s.epoch) ? true : undefined;
  }, 90_000, 250);
  for (const s of lost) {
    // Seen once in 6 runs: the new master's rolling sync_client made no progress for over 40 s after the old master
    // came back (switchover refused: replication stalled). Retried for two minutes, and counted.
    const t = Date.now();
    for (;;) {
      const r = await cluster.slotctl(['store', 'switchover', s.name, '--wait']);
      if (r.exitCode === 0) break;
      if (Date.now() - t > 120_000) throw new Error(`switchover back of ${s.name}: ${r.stdout}${r.stderr}`);
      stalledBack.push(`${s.name} run ${i + 1}: ${r.stdout.trim().split('\n').pop()}`);
      await new Promise((r2) => setTimeout(r2, 5000));
    }
  }
  const fenced = fencesSince(fencesBefore, victim);
  if (fenced.length) {
    falseFences.push(...fenced.map((m) => `run ${i + 1}: ${m}`));
    console.log(`  run ${i + 1}: FENCE on ${fenced.join(', ')} (not the crashed machine): a lease lost under load`);
  }
  return run;
}

const out: Record<string, unknown> = {
  benchmark: 'failover',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:failover -- --runs ${runs} --lease ${lease}${process.argv.includes('--interval') ? ` --interval ${interval}` : ''}${loadRate ? ` --load ${loadRate}` : ''}${ha ? ' --ha' : ''}`,
  heartbeatInterval: interval,
  coordinators: ha ? '3 over 3 etcd members (--leader-lease 2s); the leader killed with the machine' : 'one, SQLite',
  load: loadRate ? { messagesPerSecond: loadRate, to: 'every store, LMTP on its service IP, from the client namespace' } : 'none',
  lease: { leaseMs, heartbeatInterval: interval },
  goal: ha ? { totalMs: 15_000, leaderLease: '2s' } : { totalP50Ms: 10_000, stretchMs: 5_000, stretchLease: '2s' },
};
try {
  console.log(`failover: 5 machines × 8 slots, lease ${lease}, crash(${victim}) ${runs} times…`);
  const noFences = fenceStamps();
  await cluster.start();
  const stores = await storeList();
  if (stores.length === 0) throw new Error('no stores');
  const load = loadRate ? cluster.startLoad('failover-load', stores.map((s) => ({ store: s.name, host: s.serviceIp, users: ['amy', 'bob'] })), loadRate) : undefined;
  const results: Run[] = [];
  try {
    // the start-up's fences (40 slots starting at once): a lease that does not survive them is not safe here either
    out.startUpFences = fencesSince(noFences);
    if ((out.startUpFences as string[]).length) console.log(`  start-up: FENCE on ${(out.startUpFences as string[]).join(', ')}`);
    for (let i = 0; i < runs; i++) results.push(await oneRun(i));
  } finally {
    out.falseFences = falseFences;
    if (load) out.loadSummary = await load.stop();
  }
  const keys = ['totalMs', 'detectionMs', 'decisionMs', 'promotionMs', 'startMs', ...(ha ? (['newLeaderMs'] as const) : [])] as const;
  out.failover = Object.fromEntries(keys.map((k) => [k, stats(results.map((r) => r[k] ?? Number.NaN))]));
  // each step of the start phase, ms after the store's flip, over every store of every run
  out.startSteps = Object.fromEntries(START_STEPS.map((k) => [k, stats(startBreakdown.flatMap((b) => (b[k] === undefined ? [] : [b[k]!])))]));
  console.log(`start phase, ms after the flip (p50): ${START_STEPS.map((k) => `${k} ${(out.startSteps as Record<string, { p50: number }>)[k]!.p50}`).join(', ')}`);
  out.switchBackRetries = stalledBack;
  out.recoveredAfterRuns = recovered;
  out.notes = [
    'total: crash → the last of the machine\'s 4 stores greets a client (* OK arrived) on its service IP from its peer (client namespace, 5 ms probes: 200 ms for the handshake, then up to 2 s for the greeting)',
    'detection: crash → machine.down (lease + a fifth of it after the last heartbeat, so up to one heartbeat interval less after the crash)',
    'decision: machine.down → failover operations created; promotion: → the last database flip; start: last flip → last * OK (address taken after the ARP probe, cyrmaster started as master)',
    ...(ha ? ['newLeader: crash and leader kill → the new leader coordinator running (its coordinator.started event)'] : []),
  ];
} finally {
  await cluster.destroy();
  removeDir(dir);
  stopSyslogd();
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const name = ha ? `failover-ha${loadRate ? `-load${loadRate}` : ''}.json` : loadRate ? `failover-load${loadRate}${lease === '5s' ? '' : `-${lease}`}.json` : lease === '5s' ? 'failover.json' : `failover-${lease}.json`;
writeFileSync(join(ROOT, 'bench', 'results', name), `${JSON.stringify(out, null, 2)}\n`);
console.log(`failover: ${JSON.stringify(out.failover)}; written to bench/results/${name}`);
