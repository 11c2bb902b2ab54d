// bench/overhead: what slotctl itself costs a mail host under mail load — the CPU its agents, fences and coordinator
// use while nothing but mail happens (no operation, no fault), as a share of one core, beside the whole host's.
// The agents run at nice -10, ahead of Cyrus: every millisecond they spend is one an imapd or lmtpd may wait.
// Same layout as bench:switchover (18 masters on m1, replicas fanned out over m2…m5; 4 masters on m2).
// Writes bench/results/overhead.json.
//
//   npm run bench:overhead -- [--load 25] [--seconds 60] [--warmup 20]
//
// BENCH_AGENT_NODE_OPTIONS reaches the agents' NODE_OPTIONS (e.g. `--require` of a CPU profiler, to see where it goes).
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, writeResult, type StoreJson } from './common.js';

const loadRate = Number(benchArg('load', '25'));
const seconds = Number(benchArg('seconds', '60'));
const warmup = Number(benchArg('warmup', '20'));
const machines = ['m1', 'm2', 'm3', 'm4', 'm5'];
const stores = [
  ...Array.from({ length: 18 }, (_, i) => ({ name: `a${String(i + 1).padStart(2, '0')}`, master: 'm1', replica: machines[1 + (i % 4)]! })),
  ...Array.from({ length: 4 }, (_, i) => ({ name: `b0${i + 1}`, master: 'm2', replica: ['m3', 'm4', 'm5', 'm1'][i]! })),
];
const dir = tempDir('overhead-bench');
const cluster = new NetnsCluster({ dir, id: 'w', machines: machines.length, stores, log: (l) => console.log(`  ${l}`), agentEnv: process.env.BENCH_AGENT_NODE_OPTIONS ? () => ({ NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS! }) : undefined });
const stopSyslogd = stopSyslogdStartedAfterNow();
const TICKS = 100; // USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on Linux

/** slotctl's own long-lived processes of this run, by role (their command lines name the run's directory). */
function ownProcesses(): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // exited meanwhile
    }
    if (!argv.some((a) => a.startsWith(dir))) continue;
    const script = argv.find((a) => /slot-(agent|fence|coordinator)\.js$/.test(a));
    if (!script) continue;
    const kind = /slot-(\w+)\.js$/.exec(script)![1]!;
    const stateDir = argv[argv.indexOf('--state-dir') + 1] ?? '';
    const machine = /agents\/(m\d+)/.exec(stateDir)?.[1] ?? '';
    found.set(kind === 'coordinator' ? 'coordinator' : `${kind}-${machine}`, Number(entry));
  }
  return found;
}

/** CPU ticks of a process: its own, and its reaped children's (the tools an agent runs: ip, arping, cyr_* …). */
function ticks(pid: number): { self: number; children: number } | undefined {
  try {
    // fields after the command's closing parenthesis: utime is the 14th field of the line, stime 15, cutime 16, cstime 17
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { self: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

/** Busy and total ticks of the whole host (/proc/stat's cpu line). */
function hostTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + f[4]!; // idle + iowait
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

const out: Record<string, unknown> = {
  benchmark: 'overhead',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:overhead -- --load ${loadRate} --seconds ${seconds} --warmup ${warmup}`,
  load: { messagesPerSecond: loadRate, to: 'every store, LMTP on its service IP, from the client namespace' },
};
let load: ReturnType<typeof cluster.startLoad> | undefined;
try {
  console.log(`overhead: ${machines.length} machines, ${stores.length} stores, ${loadRate} msg/s…`);
  await cluster.start();
  const all = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
  load = cluster.startLoad('overhead-load', all.map((s) => ({ store: s.name, host: s.serviceIp, users: ['amy', 'bob'] })), loadRate);
  await new Promise((r) => setTimeout(r, warmup * 1000));
  const procs = ownProcesses();
  const before = new Map([...procs].map(([k, pid]) => [k, ticks(pid)]));
  const host0 = hostTicks();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wallS = (performance.now() - t0) / 1000;
  const host1 = hostTicks();
  const pct = (t: number) => Math.round((t / TICKS / wallS) * 1000) / 10; // % of one core
  const byProcess: Record<string, { selfPctOfCore: number; childrenPctOfCore: number }> = {};
  for (const [k, pid] of [...procs].sort(([a], [b]) => a.localeCompare(b))) {
    const a = before.get(k);
    const b = ticks(pid);
    if (!a || !b) continue; // restarted or gone meanwhile: not this benchmark's question
    byProcess[k] = { selfPctOfCore: pct(b.self - a.self), childrenPctOfCore: pct(b.children - a.children) };
  }
  const sum = (prefix: string) => Math.round(Object.entries(byProcess).filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v.selfPctOfCore + v.childrenPctOfCore, 0) * 10) / 10;
  out.seconds = Math.round(wallS * 10) / 10;
  out.pctOfOneCore = { agents: sum('agent-'), fences: sum('fence-'), coordinator: sum('coordinator'), byProcess };
  out.hostBusyPctOfAllCores = Math.round(((host1.busy - host0.busy) / (host1.total - host0.total)) * 1000) / 10;
  out.loadSummary = await load.stop();
  load = undefined;
  console.log(`  ${JSON.stringify(out.pctOfOneCore)}`);
  console.log(`  host busy ${String(out.hostBusyPctOfAllCores)} % of ${cpus().length} cores`);
  out.notes = [
    'pctOfOneCore: CPU time (user + system) over the measured seconds, after the warm-up, as a percentage of one core; "children" is what the process\'s reaped child processes used (an agent\'s ip, arping and Cyrus tools)',
    'hostBusyPctOfAllCores: the whole host (every namespace machine, Cyrus, the load generator, the kernel) over the same seconds',
  ];
} finally {
  await load?.stop().catch(() => undefined);
  await cluster.destroy();
  removeDir(dir);
  stopSyslogd();
}
const written = writeResult('overhead', out);
console.log(`overhead: agents ${String((out.pctOfOneCore as { agents: number }).agents)} % of a core; written to ${written}`);
