// bench/switchover: the unavailability window of a planned switchover on the namespace cluster — from the old
// master refusing IMAP connections at the service IP to the new master's first `* OK` there, seen from the client
// namespace (probing every 5 ms) — with an empty backlog and with a 1,000-message backlog, p50/p99 over --runs runs,
// broken down by recorded step; and the time to drain a machine of 4 and of 18 masters. Goal: p50 < 2 s (empty).
// Writes bench/results/switchover.json.
//
// With --load N an MTA-like load of N messages/s goes to every store throughout (the window under load).
//
//   npm run bench:switchover -- [--runs 20] [--backlog 1000] [--load 25] [--phases empty,backlog,drain]
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { OperationInfo__Output } from '@slotctl/shared';
import { NetnsCluster } from '../test/cluster/netns.js';
import { readLogLines, removeDir, tempDir } from '../test/support/fixtures.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, greetedAt, startImapProbe, type ProbeLine, type ProbeSummary, type StoreJson } from './common.js';

const runs = Number(benchArg('runs', '20'));
const phases = new Set(benchArg('phases', 'empty,backlog,drain').split(','));
const backlog = Number(benchArg('backlog', '1000'));
const loadRate = Number(benchArg('load', '0'));
const machines = ['m1', 'm2', 'm3', 'm4', 'm5'];
// 18 masters on m1 (replicas fanned out over m2…m5), 4 masters on m2
const stores = [
  ...Array.from({ length: 18 }, (_, i) => ({ name: `a${String(i + 1).padStart(2, '0')}`, master: 'm1', replica: machines[1 + (i % 4)]! })),
  ...Array.from({ length: 4 }, (_, i) => ({ name: `b0${i + 1}`, master: 'm2', replica: ['m3', 'm4', 'm5', 'm1'][i]! })),
];
const dir = tempDir('switchover-bench');
const cluster = new NetnsCluster({ dir, id: 'w', machines: machines.length, stores, log: (l) => console.log(`  ${l}`) });
const stopSyslogd = stopSyslogdStartedAfterNow();

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const stats = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs), runs: xs.length });

/** A long-lived admin client in the coordinator's namespace: switchovers are timed without starting slotctl. */
function driver() {
  const d = cluster.operationDriver();
  return { run: async (cmd: object) => (await d.run<{ operation: OperationInfo__Output }>(cmd)).operation, close: () => d.close() };
}

/** Milliseconds between the recorded steps of a switchover. */
function stepTimes(op: OperationInfo__Output): Record<string, number> {
  const at = Object.fromEntries(op.steps.map((s) => [s.step, Date.parse(s.at)]));
  const d = (a: string, b: string) => (at[a] !== undefined && at[b] !== undefined ? at[b]! - at[a]! : NaN);
  return {
    stopMaster: d('stop-master', 'replay'),
    replay: d('replay', 'verify'),
    verify: d('verify', 'flip'),
    flip: d('flip', 'start'),
    startNewRoles: d('start', 'confirm'),
    confirmReplication: d('confirm', 'done'),
    total: d('started', 'done'),
  };
}

type Run = { windowMs: number; steps: Record<string, number>; replayed: string; timeline: Record<string, number>; greet?: ProbeSummary };

/**
 * Where one window went, in ms from its start (the first refused IMAP connection), from the operation's steps and
 * the two agents' logs: the old master's listeners closed (quiesce) and its stop reported; the flip; the new
 * master's promotion (or restart) begun, its service address bound, LMTP answering there (ready); the first greeted
 * attempt's handshake and its * OK.
 */
function timeline(s: StoreJson, op: OperationInfo__Output, requested: number, down: number, up: ProbeLine): Record<string, number> {
  const since = (path: string) => readLogLines(path).filter((l) => Date.parse(String(l.time)) >= requested);
  const at = (l: Record<string, unknown> | undefined) => (l ? Date.parse(String(l.time)) - down : NaN);
  const step = (name: string) => {
    const x = op.steps.find((st) => st.step === name);
    return x ? Date.parse(x.at) - down : NaN;
  };
  const old = since(cluster.agentLogFile(s.master.machine));
  const neu = since(cluster.agentLogFile(s.replica.machine));
  const slotLine = (lines: Record<string, unknown>[], slot: string, event: string) => lines.find((l) => l.slot === slot && l.event === event);
  return {
    quiesced: at(old.find((l) => l.ip === s.serviceIp && String(l.msg).startsWith('service listeners closed'))),
    stopReported: step('replay'),
    flipped: step('flip'), // the flip is that step's action
    promoteBegun: at(slotLine(neu, s.replica.name, 'promote') ?? slotLine(neu, s.replica.name, 'start')),
    addressBound: at(neu.find((l) => l.ip === s.serviceIp && l.msg === 'service IP bound and announced')),
    lmtpReady: at(slotLine(neu, s.replica.name, 'ready')),
    firstConnect: (up.connectedAt ?? up.at) - down, // the TCP handshake of the attempt the new master greeted first
    firstOk: greetedAt(up) - down,
  };
}

async function switchoverWindow(drv: ReturnType<typeof driver>, store: string, before?: () => Promise<void>): Promise<Run> {
  const s = (await cluster.slotctlJson<StoreJson[]>(['store', 'list'])).find((x) => x.name === store)!;
  // long enough for a switchover that replays a backlog or runs under load (one took over 5 s: the 6 s probe ended
  // first; under --load 25 the first empty-backlog window outlived an 8 s probe)
  const probe = await startImapProbe(cluster, s.serviceIp, 5, before || loadRate ? 20_000 : 8000);
  await before?.();
  const requested = Date.now();
  const op = await drv.run({ switchover: store });
  if (op.state !== 'succeeded') throw new Error(`switchover of ${store} ${op.state}: ${op.error}`);
  const lines = await probe.lines();
  const down = lines.find((l) => !l.ok && l.at >= requested - 5);
  const up = down && lines.find((l) => l.ok && l.at > down.at);
  if (!down || !up) throw new Error(`no outage and recovery seen at ${s.serviceIp}: ${JSON.stringify(lines)}`);
  return { windowMs: greetedAt(up) - down.at, steps: stepTimes(op), replayed: op.steps.find((x) => x.step === 'verify')?.reason ?? '', timeline: timeline(s, op, requested, down.at, up), greet: await probe.summary() };
}

const out: Record<string, unknown> = {
  benchmark: 'switchover',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:switchover -- --runs ${runs} --backlog ${backlog}${loadRate ? ` --load ${loadRate}` : ''}${phases.size < 3 ? ` --phases ${[...phases].join(',')}` : ''}`,
  load: loadRate ? { messagesPerSecond: loadRate, to: 'every store, LMTP on its service IP, from the client namespace' } : 'none',
  goal: { emptyBacklogP50Ms: 2000, stretchMs: 1000 },
};
let drv: ReturnType<typeof driver> | undefined;
let load: ReturnType<typeof cluster.startLoad> | undefined;
try {
  console.log(`switchover: ${machines.length} machines, ${stores.length} stores…`);
  await cluster.start();
  drv = driver();
  const all = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
  load = loadRate ? cluster.startLoad('switchover-load', all.map((s) => ({ store: s.name, host: s.serviceIp, users: ['amy', 'bob'] })), loadRate) : undefined;

  const empty: Run[] = [];
  for (let i = 0; phases.has('empty') && i < runs; i++) {
    empty.push(await switchoverWindow(drv, 'a01'));
    console.log(`  empty backlog, run ${i + 1}: window ${empty.at(-1)!.windowMs} ms ${JSON.stringify(empty.at(-1)!.steps)} timeline ${JSON.stringify(empty.at(-1)!.timeline)} greeting ${JSON.stringify(empty.at(-1)!.greet)}`);
  }

  const full: (Run & { backlogLines: number })[] = [];
  for (let i = 0; phases.has('backlog') && i < runs; i++) {
    const s = (await cluster.slotctlJson<StoreJson[]>(['store', 'list'])).find((x) => x.name === 'a02')!;
    await cluster.blockSync(s.replica.machine);
    let lines = 0;
    try {
      await cluster.mail('bulk', [{ host: s.serviceIp, users: Array.from({ length: 10 }, (_, k) => `user${k}`), count: backlog, subject: `run ${i}` }]);
      const syncDir = join(dir, 'srv', s.master.machine, 'a02', 'meta', 'conf', 'sync');
      const appends = () =>
        (existsSync(syncDir) ? readdirSync(syncDir) : [])
          .filter((f) => f.startsWith('log'))
          .reduce((n, f) => n + readFileSync(join(syncDir, f), 'utf8').split('\n').filter((l) => l.startsWith('APPEND')).length, 0);
      lines = await waitFor(`${backlog} APPEND lines in the sync logs (${appends()} so far)`, () => {
        const n = appends();
        return n >= backlog ? n : undefined;
      }, 30_000, 100).catch((err: Error) => {
        throw new Error(`${err.message}; files: ${readdirSync(syncDir).join(', ')}; ${appends()} APPEND lines`);
      });
    } catch (err) {
      await cluster.unblockSync(s.replica.machine);
      throw err;
    }
    // the rolling sync_client sleeps in its reconnect backoff: opening the port and asking at once leaves the
    // backlog to the switchover's replay (the agent's watcher would wake the client within ~250 ms)
    const r = await switchoverWindow(drv, 'a02', () => cluster.unblockSync(s.replica.machine));
    full.push({ ...r, backlogLines: lines });
    console.log(`  ${lines}-message backlog, run ${i + 1}: window ${r.windowMs} ms ${JSON.stringify(r.steps)} (${r.replayed}) timeline ${JSON.stringify(r.timeline)} greeting ${JSON.stringify(r.greet)}`);
  }

  const drains: Record<string, unknown> = {};
  for (const [m, n] of phases.has('drain') ? ([['m2', 4], ['m1', 18]] as const) : []) {
    const t = performance.now();
    const op = await drv.run({ drain: m, parallel: 2 });
    const ms = Math.round(performance.now() - t);
    const moved = op.children.filter((c) => c.state === 'succeeded').length;
    drains[`${n}Masters`] = { ms, moved, parallel: 2, state: op.state };
    console.log(`  drain of ${m} (${n} masters, 2 at a time): ${op.state}, ${moved} moved in ${ms} ms`);
    await drv.run({ undrain: m }).catch(() => undefined);
  }

  const keys = ['stopMaster', 'replay', 'verify', 'flip', 'startNewRoles', 'confirmReplication', 'total'] as const;
  const breakdown = (xs: Run[]) => Object.fromEntries(keys.map((k) => [k, stats(xs.map((x) => x.steps[k]!))]));
  const marks = (xs: Run[]) => Object.fromEntries(Object.keys(xs[0]?.timeline ?? {}).map((k) => [k, stats(xs.map((x) => x.timeline[k]!).filter((v) => !Number.isNaN(v)))]));
  // a greeting's own wait while the store serves (each run's probe, its p50 and its slowest): the floor of any window
  const ofRuns = (xs: Run[], field: 'greetP50Ms' | 'greetMaxMs') => stats(xs.flatMap((x) => x.greet?.[field] ?? []));
  const greeting = (xs: Run[]) => ({ p50OfRuns: ofRuns(xs, 'greetP50Ms'), maxOfRuns: ofRuns(xs, 'greetMaxMs') });
  out.emptyBacklog = { windowMs: stats(empty.map((x) => x.windowMs)), stepsMs: breakdown(empty), timelineMs: marks(empty), greetingMs: greeting(empty) };
  out.backlog = { messages: backlog, backlogLines: stats(full.map((x) => x.backlogLines)), windowMs: stats(full.map((x) => x.windowMs)), stepsMs: breakdown(full), timelineMs: marks(full), greetingMs: greeting(full) };
  out.drain = drains;
  out.notes = [
    'window: from the start of the first refused or unanswered IMAP connection at the service IP to the moment the new master\'s first * OK arrived, probed every 5 ms from the client namespace (200 ms for the TCP handshake, then up to 2 s for the greeting, as a client waits)',
    'steps: between the recorded steps of the operation (coordinator clock); startNewRoles ends when both agents have reported the new roles; confirmReplication (after the window) ends when a marker written on the new master was consumed by its rolling sync_client',
    'timeline: ms from the window\'s start to: the old master\'s service listeners closed (its agent log), its stop reported (the replay step), the flip (the flip step, whose action it is), the new master\'s promotion (or start) begun, its service address bound, LMTP answering there (ready), the handshake of the first attempt the new master greeted, that greeting (the probe); one host, one clock',
    'greetingMs: per run, the probe\'s handshake → * OK of every greeted attempt over its whole life (the store serving, before and after the window): p50OfRuns the runs\' medians, maxOfRuns their slowest (the new master\'s first greeting among them)',
  ];
  if (load) out.loadSummary = await load.stop();
  load = undefined;
} finally {
  await load?.stop().catch(() => undefined);
  drv?.close();
  await cluster.destroy();
  removeDir(dir);
  stopSyslogd();
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'switchover.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`switchover: ${JSON.stringify({ empty: (out.emptyBacklog as { windowMs: unknown }).windowMs, backlog: (out.backlog as { windowMs: unknown }).windowMs, drain: out.drain })}; written to bench/results/switchover.json`);
