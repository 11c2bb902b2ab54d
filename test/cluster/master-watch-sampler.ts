// The split-brain watch's sampling process (MasterWatch in master-watch.ts starts two, one per CPU, gives them
// real-time priority and talks to them over stdin/stdout): every few milliseconds it reads each machine's listening TCP sockets and
// records every moment at which more than one machine listens for LMTP on one service IP, and every gap between
// two samples over GAP_LIMIT_MS. It is a process of its own so that it can be scheduled ahead of everything on a
// busy host (measured on a loaded 2-core host: a thread at nice -5 waited up to 89 ms for a CPU with nothing to
// read, at SCHED_RR 1 at most 26 ms); each sample rests at least as long as it took, so that even when reads are
// slow it never takes more than half a core from the cluster under test (reads in namespaces with TCP tables of
// their own take ~0.1 ms: then it takes about a twentieth).
//   node --import tsx test/cluster/master-watch-sampler.ts CONFIG-JSON   (stdin: go | stall MS | stop)
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { GAP_LIMIT_MS, listeners, type MasterWatchResult, type SamplerConfig } from './master-watch.js';

/** How long a process seen outside every watched namespace is believed to stay there (see scan()). */
const NEGATIVE_CACHE_MS = 1000;
/** Spread of those expiries, so that the processes are read again a few per sample and not all in one sample. */
const NEGATIVE_CACHE_JITTER_MS = 1000;

const namespaceLink = (ns: string): string | undefined => {
  try {
    return `net:[${statSync(`/run/netns/${ns}`).ino}]`;
  } catch {
    return undefined;
  }
};

const netLink = (pid: number): string | undefined => {
  try {
    return readlinkSync(`/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
};

const config = JSON.parse(process.argv[2] ?? '{}') as SamplerConfig;
const result: MasterWatchResult = { samples: 0, dual: [], seen: {}, longestGapMs: 0, gaps: [], longestSampleMs: 0, priority: '' };
const serviceIps = new Set(config.serviceIps);
const pids = new Map<string, number>();
/** pid → its namespace link and when it was read; a process changes namespace only when `ip netns exec` starts it. */
const pidLinks = new Map<number, { link: string; until: number }>();
let previousStart: number | undefined;
/** performance.now() → CLOCK_MONOTONIC ms (the offset taken once: both clocks advance together). */
const monotonicOffset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
const toMonotonic = (t: number): number => t + monotonicOffset;

/**
 * Processes for the machines that have none (gone since the last sample): one pass over /proc. A process born
 * inside a namespace is seen there at once; only `ip netns exec` moves a process after its birth, within
 * milliseconds, so a process seen elsewhere is read again after NEGATIVE_CACHE_MS (and a jitter) and not on every sample (a
 * crashed machine's namespace has no process at all, and reading every process's link every 10 ms was costly).
 */
function scan(wanted: Map<string, string[]>, now: number): void {
  const present = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    present.add(pid);
    let known = pidLinks.get(pid);
    if (!known || now > known.until || wanted.has(known.link)) {
      const link = netLink(pid);
      if (!link) continue;
      known = { link, until: now + NEGATIVE_CACHE_MS + Math.random() * NEGATIVE_CACHE_JITTER_MS };
      pidLinks.set(pid, known);
    }
    const machines = wanted.get(known.link);
    if (!machines) continue;
    for (const m of machines) pids.set(m, pid);
    wanted.delete(known.link);
  }
  for (const pid of pidLinks.keys()) if (!present.has(pid)) pidLinks.delete(pid);
}

function sample(): number {
  const start = performance.now();
  // two names may share a namespace: the test that shows the watch can fail
  const wanted = new Map<string, string[]>();
  for (const [m, ns] of config.namespaces) {
    const link = namespaceLink(ns);
    const pid = pids.get(m);
    if (link && pid && netLink(pid) === link) continue;
    pids.delete(m);
    if (link) wanted.set(link, [...(wanted.get(link) ?? []), m]);
  }
  if (wanted.size) scan(wanted, Date.now());
  const byIp = new Map<string, string[]>();
  for (const [m] of config.namespaces) {
    const pid = pids.get(m);
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
    if (gap > GAP_LIMIT_MS) result.gaps.push({ at: Date.now(), ms: Math.round(gap), from: toMonotonic(previousStart), to: toMonotonic(end) });
  }
  previousStart = start;
  result.longestSampleMs = Math.max(result.longestSampleMs, Math.round(end - start));
  return end - start;
}

let timer: NodeJS.Timeout | undefined;
const loop = (): void => {
  const took = sample();
  timer = setTimeout(loop, Math.max(config.everyMs - took, took));
};
const send = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

const commands = createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const [command, arg] = line.trim().split(' ');
  if (command === 'go') {
    loop();
    send({ type: 'started' });
  } else if (command === 'stall') {
    const until = performance.now() + Number(arg);
    while (performance.now() < until) {
      // held up, as a starved sampler would be (the unit test shows that a gap is reported)
    }
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
send({ type: 'ready' });
