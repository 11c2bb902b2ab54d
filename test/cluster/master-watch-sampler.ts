// The split-brain watch's sampling process (MasterWatch in master-watch.ts starts two, one per CPU, gives them
// real-time priority and talks to them over stdin/stdout): every few milliseconds it reads each machine's listening TCP sockets and
// records every moment at which more than one machine listens for LMTP on one service IP, and every gap between
// two samples over GAP_LIMIT_MS. It is a process of its own so that it can be scheduled ahead of everything on a
// busy host (measured on a loaded 2-core host: a thread at nice -5 waited up to 89 ms for a CPU with nothing to
// read, at SCHED_RR 1 at most 26 ms); each sample rests at least as long as it took, so that even when reads are
// slow it never takes more than half a core from the cluster under test (reads in namespaces with TCP tables of
// their own take ~0.1 ms: then it takes about a twentieth).
//   node --import tsx test/cluster/master-watch-sampler.ts CONFIG-JSON   (stdin: go | stall FROM,MS | stop)
import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readSync, readlinkSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { GAP_LIMIT_MS, listeners, type MasterWatchResult, type SamplerConfig, stealMs, stolenAtLeast } from './master-watch.js';

const config = JSON.parse(process.argv[2] ?? '{}') as SamplerConfig;
const result: MasterWatchResult = { samples: 0, dual: [], seen: {}, longestGapMs: 0, gaps: [], longestSampleMs: 0, priority: '' };
const serviceIps = new Set(config.serviceIps);
/** An anchor outlives a sampler killed by SIGKILL by at most this long. */
const ANCHOR_SECONDS = 3600;
/**
 * One anchor process per machine (`sleep`, entered into its namespace with nsenter, started before the first sample
 * and killed with the sampler): the machine's TCP table is read through /proc/ANCHOR/net/tcp. The machine's own
 * processes come and go (a crash kills all of them; finding a new one meant a pass over /proc, up to ~100 ms a sample
 * on a loaded host); the anchor and the namespace stay.
 */
const anchors = new Map<string, ChildProcess>();
for (const [m, ns] of config.namespaces) {
  const anchor = spawn('nsenter', [`--net=/run/netns/${ns}`, 'sleep', String(ANCHOR_SECONDS)], { stdio: 'ignore' });
  anchor.on('error', () => undefined); // a namespace that does not exist: that machine is never read
  // not holding the sampler open: it must exit (and kill its anchors) once its stdin closes; held open, it waited
  // for MasterWatch's 5 s SIGKILL, which left the anchors behind (391 found after a day of runs)
  anchor.unref();
  anchors.set(m, anchor);
}
process.once('exit', () => {
  for (const anchor of anchors.values()) anchor.kill('SIGKILL');
});
const pidOf = (m: string): number | undefined => {
  const anchor = anchors.get(m);
  return anchor && anchor.exitCode === null && anchor.signalCode === null ? anchor.pid : undefined;
};
/**
 * This thread's scheduler statistics (/proc/…/schedstat: ns on a CPU, ns runnable but waiting for one): a gap is
 * reported with how much of it the sampler spent waiting for its CPU and how much running, which tells a CPU held by
 * something else from a slow read or a stalled machine.
 */
const schedFd = (() => {
  try {
    return openSync(`/proc/self/task/${process.pid}/schedstat`, 'r');
  } catch {
    return undefined; // a kernel without CONFIG_SCHED_INFO: gaps are reported without the split
  }
})();
const schedBuffer = Buffer.alloc(128);
function schedstat(): { cpuMs: number; waitMs: number } | undefined {
  if (schedFd === undefined) return undefined;
  const n = readSync(schedFd, schedBuffer, 0, schedBuffer.length, 0);
  const [cpu, wait] = schedBuffer.toString('latin1', 0, n).split(' ');
  return { cpuMs: Number(cpu) / 1e6, waitMs: Number(wait) / 1e6 };
}

/**
 * The steal time of the sampler's CPU (/proc/stat: ~10 µs a read): a gap in which the hypervisor ran something else
 * instead of this CPU is reported with how much of it was certainly stolen.
 */
const statFd = (() => {
  if (config.cpu === undefined) return undefined;
  try {
    return openSync('/proc/stat', 'r');
  } catch {
    return undefined;
  }
})();
const statBuffer = Buffer.alloc(64 * 1024);
function steal(): number | undefined {
  if (statFd === undefined) return undefined;
  const n = readSync(statFd, statBuffer, 0, statBuffer.length, 0);
  return stealMs(statBuffer.toString('latin1', 0, n), config.cpu!);
}

let previousStart: number | undefined;
let previousSteal: number | undefined;
let previousSched: ReturnType<typeof schedstat>;
/** How long the previous sample spent reading (its reads lie inside the next gap). */
let previousTook = 0;
/** How long the sampler meant to sleep before this sample (the rest of a gap is waiting, running or stalled). */
let plannedSleep = 0;
/** performance.now() → CLOCK_MONOTONIC ms (the offset taken once: both clocks advance together). */
const monotonicOffset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const toMonotonic = (t: number): number => t + monotonicOffset;

function sample(): number {
  const start = performance.now();
  const startSteal = steal();
  const startSched = schedstat();
  const byIp = new Map<string, string[]>();
  // two names may share a namespace (the test that shows the watch can fail): each has its own anchor there
  for (const [m] of config.namespaces) {
    const pid = pidOf(m);
    if (!pid) continue;
    for (const ip of listeners(pid, config.lmtpPort)) {
      if (serviceIps.has(ip)) byIp.set(ip, [...(byIp.get(ip) ?? []), m]);
    }
  }
  const end = performance.now();
  result.samples++;
  for (const [ip, machines] of byIp) {
    result.seen[ip] = (result.seen[ip] ?? 0) + 1;
    if (machines.length > 1) result.dual.push({ at: Date.now(), ip, machines });
  }
  if (previousStart !== undefined) {
    // from the first read of the previous sample to the last read of this one: the longest a machine went unread
    const gap = end - previousStart;
    result.longestGapMs = Math.max(result.longestGapMs, Math.round(gap));
    // from/to on CLOCK_MONOTONIC (shared by the host's processes): MasterWatch intersects the gaps of its samplers
    if (gap > GAP_LIMIT_MS) {
      const endSched = schedstat();
      const endSteal = steal();
      const stolen = endSteal !== undefined && previousSteal !== undefined ? { stolenMs: stolenAtLeast(previousSteal, endSteal) } : {};
      const split = endSched && previousSched
        ? {
            sleptMs: Math.round(plannedSleep),
            waitMs: Math.round(endSched.waitMs - previousSched.waitMs),
            cpuMs: Math.round(endSched.cpuMs - previousSched.cpuMs),
            readMs: Math.round(previousTook + (end - start)),
          }
        : {};
      result.gaps.push({ at: Date.now(), ms: Math.round(gap), from: toMonotonic(previousStart), to: toMonotonic(end), ...split, ...stolen });
    }
  }
  previousStart = start;
  previousSched = startSched;
  previousSteal = startSteal;
  previousTook = end - start;
  result.longestSampleMs = Math.max(result.longestSampleMs, Math.round(end - start));
  return end - start;
}

let timer: NodeJS.Timeout | undefined;
const loop = (): void => {
  const took = sample();
  plannedSleep = Math.max(config.everyMs - took, took);
  timer = setTimeout(loop, plannedSleep);
};
const send = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const [command, arg] = line.trim().split(' ');
  if (command === 'go') {
    // what start-up left is collected now, not in the middle of a sample (the loop itself makes next to no garbage)
    (globalThis as { gc?: () => void }).gc?.();
    loop();
    send({ type: 'started' });
  } else if (command === 'stall') {
    // `stall FROM,MS`, FROM on CLOCK_MONOTONIC: every sampler is held up over the same moment, as a starved one would be
    // (the unit test shows that a blind spot is reported)
    const [from, ms] = (arg ?? '').split(',').map(Number) as [number, number];
    const begin = from - monotonicOffset;
    setTimeout(() => {
      while (performance.now() < begin + ms) {
        // held up
      }
    }, Math.max(0, begin - performance.now()));
  } else if (command === 'stop') {
    clearTimeout(timer);
    sample(); // the time since the last sample counts too
    send({ type: 'result', result });
    commands.close();
  }
});
// the test process is gone (stdin closed): stop with it
commands.on('close', () => {
  clearTimeout(timer);
  process.exitCode = 0;
});
// ready once every anchor is inside its namespace (before nsenter's setns its /proc/PID/net is the host's)
const inside = (m: string, ns: string): boolean => {
  const pid = pidOf(m);
  if (!pid) return true; // gone (no such namespace): that machine is not read
  try {
    return readlinkSync(`/proc/${pid}/ns/net`) === `net:[${statSync(`/run/netns/${ns}`).ino}]`;
  } catch {
    return false;
  }
};
const until = Date.now() + 10_000;
while (Date.now() < until && !config.namespaces.every(([m, ns]) => inside(m, ns))) await new Promise((r) => setTimeout(r, 5));
send({ type: 'ready' });
