// A split-brain checker for the namespace cluster: every few milliseconds it reads each machine's listening TCP
// sockets (/proc/PID/net/tcp of a process inside that machine's namespace, no process spawned) and records every
// moment at which more than one machine listens for LMTP on the same service IP — two slots accepting mail for one
// store. It samples in a worker thread of its own, at nice -5 where allowed (ahead of the mail workload, behind the
// daemons at -10 whose leases are under test), so that the test's own work (JSON parsing, spawning slotctl, garbage
// collection) does not stop it; and it records every gap between samples over GAP_LIMIT_MS, because a dual master
// shorter than a gap could pass unseen. A sample is paced to rest at least as long as it took, so that a slow read
// never takes more than half a core from the cluster under test. `stop()` returns what it saw.
//
// Reading /proc/PID/net/tcp walks the kernel's whole TCP hash table of the namespace: namespaces created from the
// host's share its table (262,144 buckets here: 1.7–65 ms a read, measured), namespaces with a table of their own
// (net.ipv4.tcp_child_ehash_entries set where they are created) take ~0.1 ms.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { setPriority } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** The longest blind spot tolerated: a sampling gap over this fails expectNeverTwoMasters. */
export const GAP_LIMIT_MS = 50;
/** The sampling thread's nice value: ahead of Cyrus and the test (0), behind slotctl's daemons (-10). */
const WATCH_NICE = -5;

export interface DualMaster {
  at: number;
  ip: string;
  machines: string[];
}

export interface SamplingGap {
  /** Wall-clock end of the gap. */
  at: number;
  ms: number;
}

export interface MasterWatchResult {
  samples: number;
  dual: DualMaster[];
  /** Per service IP, how many samples saw a listener at all (a sanity check that the watch sees anything). */
  seen: Record<string, number>;
  /** From the first read of one sample to the last read of the next: the longest time a machine went unread. */
  longestGapMs: number;
  /** Every gap over GAP_LIMIT_MS. */
  gaps: SamplingGap[];
  /** The longest time one sample spent reading (all machines): tells a slow read from a starved thread. */
  longestSampleMs: number;
  /** Whether the sampling thread runs at a raised priority, or why not. */
  priority: string;
}

function hexIp(hex: string): string {
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

/** IPv4 addresses with a LISTEN socket on `port` in the namespace of `pid`. */
export function listeners(pid: number, port: number): string[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/tcp`, 'utf8');
  } catch {
    return []; // the process is gone (an agent being restarted)
  }
  const out: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== '0A' || !local) continue;
    const [ipHex, portHex] = local.split(':');
    if (parseInt(portHex!, 16) === port) out.push(hexIp(ipHex!));
  }
  return out;
}

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

/** Some process inside the named network namespace (found by the namespace's inode), or undefined. */
export function pidInNamespace(ns: string, hint?: number): number | undefined {
  const link = namespaceLink(ns);
  if (!link) return undefined;
  if (hint && netLink(hint) === link) return hint;
  for (const entry of readdirSync('/proc')) if (/^\d+$/.test(entry) && netLink(Number(entry)) === link) return Number(entry);
  return undefined;
}

interface SamplerConfig {
  kind: 'master-watch';
  namespaces: [string, string][];
  serviceIps: string[];
  lmtpPort: number;
  everyMs: number;
}

/** The sampling loop, inside the worker thread. */
function runSampler(config: SamplerConfig): void {
  const result: MasterWatchResult = { samples: 0, dual: [], seen: {}, longestGapMs: 0, gaps: [], longestSampleMs: 0, priority: `raised to ${WATCH_NICE}` };
  try {
    setPriority(WATCH_NICE); // on Linux this thread's own nice value only
  } catch (err) {
    result.priority = `unchanged (${(err as Error).message})`;
  }
  const serviceIps = new Set(config.serviceIps);
  const pids = new Map<string, number>();
  let previousStart: number | undefined;

  const sample = (): number => {
    const start = performance.now();
    // find a process for every machine whose last one is gone: one pass over /proc for all of them (two names may
    // share a namespace: the test that shows the watch can fail)
    const wanted = new Map<string, string[]>();
    for (const [m, ns] of config.namespaces) {
      const link = namespaceLink(ns);
      const pid = pids.get(m);
      if (link && pid && netLink(pid) === link) continue;
      pids.delete(m);
      if (link) wanted.set(link, [...(wanted.get(link) ?? []), m]);
    }
    if (wanted.size) {
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const link = netLink(Number(entry));
        const machines = link === undefined ? undefined : wanted.get(link);
        if (!machines) continue;
        for (const m of machines) pids.set(m, Number(entry));
        wanted.delete(link!);
        if (!wanted.size) break;
      }
    }
    const byIp = new Map<string, string[]>();
    for (const [m] of config.namespaces) {
      const pid = pids.get(m);
      if (!pid) continue;
      for (const ip of listeners(pid, config.lmtpPort)) {
        if (!serviceIps.has(ip)) continue;
        byIp.set(ip, [...(byIp.get(ip) ?? []), m]);
      }
    }
    const end = performance.now();
    result.samples++;
    for (const [ip, machines] of byIp) {
      result.seen[ip] = (result.seen[ip] ?? 0) + 1;
      if (machines.length > 1) result.dual.push({ at: Date.now(), ip, machines });
    }
    if (previousStart !== undefined) {
      const gap = end - previousStart;
      result.longestGapMs = Math.max(result.longestGapMs, Math.round(gap));
      if (gap > GAP_LIMIT_MS) result.gaps.push({ at: Date.now(), ms: Math.round(gap) });
    }
    previousStart = start;
    result.longestSampleMs = Math.max(result.longestSampleMs, Math.round(end - start));
    return end - start;
  };

  let timer: NodeJS.Timeout | undefined;
  const loop = (): void => {
    const took = sample();
    timer = setTimeout(loop, Math.max(config.everyMs - took, took));
  };
  loop();
  parentPort!.on('message', (message: string) => {
    if (message.startsWith('stall ')) {
      const until = performance.now() + Number(message.slice(6));
      while (performance.now() < until) {
        // the sampling thread itself held up, as a starved thread would be
      }
      return;
    }
    if (message !== 'stop') return;
    clearTimeout(timer);
    sample(); // the time since the last tick counts too
    parentPort!.postMessage({ type: 'result', result });
  });
  parentPort!.postMessage({ type: 'started' });
}

if (!isMainThread && (workerData as SamplerConfig | undefined)?.kind === 'master-watch') runSampler(workerData as SamplerConfig);

export class MasterWatch {
  private worker: Worker | undefined;
  private stopped: Promise<MasterWatchResult> | undefined;

  /** `namespaces`: machine name → its network namespace. */
  constructor(
    private readonly namespaces: ReadonlyMap<string, string>,
    private readonly serviceIps: ReadonlySet<string>,
    private readonly lmtpPort = 2003,
  ) {}

  /** Resolves once the first sample is taken: from then on nothing goes unwatched. */
  async start(everyMs = 10): Promise<void> {
    const config: SamplerConfig = { kind: 'master-watch', namespaces: [...this.namespaces], serviceIps: [...this.serviceIps], lmtpPort: this.lmtpPort, everyMs };
    // the worker loads this very file through tsx (the test process's own loader does not reach worker threads)
    const code = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
    const worker = new Worker(code, { eval: true, workerData: config });
    worker.unref(); // a test that fails before stop() must not keep its process alive
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (m: { type: string }) => (m.type === 'started' ? resolve() : reject(new Error(`unexpected message ${JSON.stringify(m)}`))));
    });
  }

  /** Holds the sampling thread up for `ms` (its unit test shows that a gap is reported). */
  stallForTest(ms: number): void {
    this.worker?.postMessage(`stall ${ms}`);
  }

  /** Stops sampling (after one last sample) and returns what the watch saw; the same answer if called again. */
  stop(): Promise<MasterWatchResult> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new Error('the master watch was never started'));
    this.stopped ??= new Promise<MasterWatchResult>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (m: { type: string; result?: MasterWatchResult }) => {
        if (m.type === 'result') resolve(m.result!);
      });
      worker.postMessage('stop');
    }).finally(() => void worker.terminate());
    return this.stopped;
  }
}
