// bench/coordinator-sessions: one real coordinator process, N simulated agents (real gRPC over loopback, 18 slots
// each, heartbeating at 1 s) in a few child processes. Reports the coordinator's CPU (% of one core) and RSS, and
// heartbeat-to-persisted latency (send → ack; the ack leaves only after the SQLite commit) p50/p99.
// Goal (issue 3): 1,000 agents under 30 % of a core, p99 < 50 ms, RSS < 300 MB.
//
//   npm run bench -- [--agents 100,1000] [--seconds 30] [--warmup 5]
import { fork } from 'node:child_process';
import { readFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { benchArg, rssMb } from './common.js';
import { LocalCluster, ROOT, waitFor } from '../tools/local-cluster.js';

const agentCounts = benchArg('agents', '100,1000').split(',').map(Number);
const seconds = Number(benchArg('seconds', '30'));
const warmup = Number(benchArg('warmup', '5'));
const SLOTS = 18;
const PROCESSES = 2;
const CLK_TCK = 100; // Linux USER_HZ

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** N machines, each with SLOTS slots; store i pairs machine i's slot k with machine (i + 1 + k % 4)'s. */
function clusterJson(machines: number): string {
  const ip = (n: number) => `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const ms = Array.from({ length: machines }, (_, i) => ({ name: `m${i}`, address: ip(0x10000 + i) }));
  const stores = [];
  let n = 0;
  for (let i = 0; i < machines; i++) {
    for (let k = 0; k < SLOTS / 2; k++) {
      const peer = (i + 1 + (k % 4)) % machines;
      const name = `st${i}-${k}`;
      stores.push({
        name,
        service_ip: ip(0x200000 + n),
        master: `m${i}`,
        slots: [
          { name: `b${i}-${k}`, machine: `m${i}`, ip: ip(0x400000 + 2 * n), data_path: `/srv/${name}/a/data`, meta_path: `/srv/${name}/a/meta` },
          { name: `b${peer}-${SLOTS / 2 + k}`, machine: `m${peer}`, ip: ip(0x400000 + 2 * n + 1), data_path: `/srv/${name}/b/data`, meta_path: `/srv/${name}/b/meta` },
        ],
      });
      n++;
    }
  }
  return JSON.stringify({ machines: ms, stores });
}

interface Run {
  agents: number;
  slots: number;
  seconds: number;
  heartbeats: number;
  heartbeatsPerSecond: number;
  errors: number;
  coordinatorCpuPercentOfOneCore: number;
  coordinatorRssMb: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  connectSeconds: number;
}

async function run(agents: number): Promise<Run> {
  const dir = join(ROOT, '.bench', `sessions-${agents}`);
  rmSync(dir, { recursive: true, force: true });
  const cluster = new LocalCluster({ dir, logLevel: 'warn', callTimeoutMs: 120_000 });
  try {
    await cluster.startCoordinator();
    const applied = await cluster.client().applyCluster({ text: clusterJson(agents), fileName: 'bench', dryRun: false, prune: false });
    if (!applied.ok) throw new Error(`bench cluster rejected: ${JSON.stringify(applied.problems.slice(0, 3))}`);
    const pid = cluster.coordinator!.pid;
    const t0 = performance.now();
    const per = Math.ceil(agents / PROCESSES);
    const children = Array.from({ length: PROCESSES }, (_, p) =>
      fork(join(ROOT, 'bench', 'sim-agents.ts'), [cluster.target, String(p * per), String(Math.min(per, agents - p * per)), String(SLOTS), String(seconds), String(warmup)], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    const results: { latencies: number[]; acks: number; errors: number }[] = [];
    let measuring = 0;
    let cpuStart = 0;
    let cpuStartAt = 0;
    let childFailure = '';
    for (const child of children) {
      child.on('exit', (code) => {
        if (code !== 0) childFailure = `a simulated-agent process exited with code ${code}`;
      });
      child.on('message', (m: { type: string; latencies?: number[]; acks?: number; errors?: number }) => {
        if (m.type === 'measuring' && ++measuring === children.length) {
          cpuStart = cpuTicks(pid);
          cpuStartAt = performance.now();
        }
        if (m.type === 'done') results.push({ latencies: m.latencies!, acks: m.acks!, errors: m.errors! });
      });
    }
    await waitFor(`${agents} agents to be up`, async () => {
      if (childFailure) throw new Error(childFailure);
      return ((await cluster.client().listMachines()).machines.every((m) => m.state === 'up') ? true : undefined);
    }, 120_000, 250);
    const connectSeconds = (performance.now() - t0) / 1000;
    await waitFor('the measurement to start', () => (cpuStartAt ? true : undefined), 120_000);
    // sample RSS during the run
    let rss = 0;
    const sampler = setInterval(() => (rss = Math.max(rss, rssMb(pid))), 500);
    await waitFor('the simulated agents to finish', () => (results.length === children.length ? true : undefined), (seconds + 60) * 1000, 100);
    const cpuSeconds = (cpuTicks(pid) - cpuStart) / CLK_TCK;
    const wall = (performance.now() - cpuStartAt) / 1000;
    clearInterval(sampler);
    const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const heartbeats = results.reduce((n, r) => n + r.acks, 0);
    const round = (x: number) => Math.round(x * 100) / 100;
    return {
      agents,
      slots: agents * SLOTS,
      seconds,
      heartbeats,
      heartbeatsPerSecond: round(heartbeats / seconds),
      errors: results.reduce((n, r) => n + r.errors, 0),
      coordinatorCpuPercentOfOneCore: round((100 * cpuSeconds) / wall),
      coordinatorRssMb: round(rss),
      latencyMs: { p50: round(percentile(latencies, 50)), p90: round(percentile(latencies, 90)), p99: round(percentile(latencies, 99)), max: round(latencies.at(-1) ?? NaN) },
      connectSeconds: round(connectSeconds),
    };
  } finally {
    await cluster.stopAll();
  }
}

const runs: Run[] = [];
for (const n of agentCounts) {
  console.log(`coordinator-sessions: ${n} agents × ${SLOTS} slots, ${warmup} s warm-up, ${seconds} s measured…`);
  const r = await run(n);
  runs.push(r);
  console.log(
    `  ${r.agents} agents: coordinator CPU ${r.coordinatorCpuPercentOfOneCore} % of one core, RSS ${r.coordinatorRssMb} MB, ` +
      `heartbeat→persisted p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms (max ${r.latencyMs.max}), ${r.heartbeatsPerSecond} heartbeats/s, ` +
      `all up after ${r.connectSeconds} s, ${r.errors} stream errors`,
  );
}
const goal = { agents: 1000, cpuPercent: 30, p99Ms: 50, rssMb: 300 };
const big = runs.find((r) => r.agents === goal.agents);
const verdict = big
  ? { cpu: big.coordinatorCpuPercentOfOneCore < goal.cpuPercent, p99: big.latencyMs.p99 < goal.p99Ms, rss: big.coordinatorRssMb < goal.rssMb }
  : undefined;
const out = {
  benchmark: 'coordinator-sessions',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench -- --agents ${agentCounts.join(',')} --seconds ${seconds} --warmup ${warmup}`,
  note: 'simulated agents run in 2 child processes on the same 2 cores as the coordinator',
  goal,
  verdict,
  runs,
};
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'coordinator-sessions.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`coordinator-sessions: goal at ${goal.agents} agents: ${verdict ? JSON.stringify(verdict) : 'not run'}; written to bench/results/coordinator-sessions.json`);
