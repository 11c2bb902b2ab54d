// A split-brain checker for the namespace cluster: every few milliseconds it reads each machine's listening TCP
// sockets (/proc/PID/net/tcp of a process inside that machine's namespace) and records every moment at which more
// than one machine listens for LMTP on the same service IP — two slots accepting mail for one store — and every gap
// between samples over GAP_LIMIT_MS, because a dual master shorter than a gap could pass unseen. The sampling runs in
// two processes of its own (master-watch-sampler.ts), one pinned to each CPU, at real-time priority (SCHED_RR 1)
// where allowed, so that neither the test's own work nor a saturated host stops it; a moment is blind only when both
// are. `stop()` returns what it saw.
//
// Reading /proc/PID/net/tcp walks the namespace's whole TCP hash table: namespaces created from the host's share its
// table (262,144 buckets here: 1–65 ms a read, measured under load), namespaces given a table of their own
// (net.ipv4.tcp_child_ehash_entries set in the namespace they are created from) take ~0.1 ms.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** The longest blind spot tolerated: a sampling gap over this fails expectNeverTwoMasters. */
export const GAP_LIMIT_MS = 50;

export interface DualMaster {
  at: number;
  ip: string;
  machines: string[];
}

export interface SamplingGap {
  /** Wall-clock end of the gap. */
  at: number;
  ms: number;
  /** The gap on CLOCK_MONOTONIC (ms): where the samplers' blind spots are intersected. */
  from?: number;
  to?: number;
  /**
   * Where a sampler's gap went (its thread's schedstat): asleep as planned, runnable but waiting for its CPU, running
   * (reads, JIT, GC); what is left is time its CPU was not running guest code at all (a stalled virtual machine).
   */
  sleptMs?: number;
  waitMs?: number;
  cpuMs?: number;
  /** Wall time the sampler spent in its reads within the gap (a read blocked in the kernel is neither CPU nor wait). */
  readMs?: number;
  /**
   * Time the hypervisor certainly took the sampler's CPU away within the gap (`stolenAtLeast`, from /proc/stat's steal
   * column): no guest code ran on that CPU then, whatever the sampler's own split says (a sampler woken just before its
   * virtual CPU was descheduled counts the whole stall as waiting).
   */
  stolenMs?: number;
  /** For a blind spot: the gap of each sampler it lies in. */
  samplers?: SamplingGap[];
  /** For a blind spot: every sampler got its CPU back at one moment (`resumedTogether`). */
  resumedTogether?: boolean;
  /**
   * For a blind spot: at most this long within it could any CPU have run the cluster (see `stoodStill`).
   * Undefined when a sampler's gap has no schedstat split.
   */
  couldRunMs?: number;
}

/**
 * How much of a sampler's gap its CPU can have spent running guest code: planned sleep (its CPU free for others),
 * runnable wait (its CPU taken by others), its own CPU time and reads. The rest is time the sampler slept past its
 * timer without being runnable: pinned to its CPU at real-time priority, with no V8 threads of its own, it wakes on
 * time whenever that CPU runs guest code with a steady clock; so in the rest its CPU ran nothing (the virtual
 * machine paused, its vCPU stolen, or CLOCK_MONOTONIC stepped forward). Nor more than the gap less the time the
 * hypervisor certainly took the CPU away (`stolenMs`), which a sampler made runnable just before its vCPU stopped
 * counts as waiting. Counted generously (reads twice: they are also CPU time): too much here only makes a stall
 * count as blind.
 */
export function runnableMs(g: SamplingGap, resumedTogether = false): number | undefined {
  if (g.sleptMs === undefined || g.waitMs === undefined || g.cpuMs === undefined) return undefined;
  const wait = resumedTogether ? 0 : g.waitMs;
  return Math.min(g.ms, g.sleptMs + wait + g.cpuMs + (g.readMs ?? 0), g.ms - (g.stolenMs ?? 0));
}

/** Samplers whose gaps end this close together got their CPUs back at one moment (see `resumedTogether`). */
export const RESUMED_TOGETHER_MS = 1;

/**
 * Whether every sampler of a blind spot got its CPU back at the same moment (their gaps end within
 * RESUMED_TOGETHER_MS). Each sampler wakes on its own timer and runs at SCHED_RR 1, pinned: a wait it then spends
 * runnable is its CPU held by something at least as urgent — never by the cluster's processes, which run as normal
 * tasks — or its virtual CPU not running at all (a guest counts a runnable task's stall as waiting, and the host's
 * steal figure does not show every stall: seen on CI, 40–44 ms of waiting with nothing stolen, the other CPU idle,
 * both gaps ending 0.09 and 0.4 ms apart). Two CPUs released together within a millisecond is the virtual machine
 * (or a stop_machine) resuming, not two workloads ending by chance: then the waits are not time the cluster ran.
 */
export function resumedTogether(samplers: readonly SamplingGap[]): boolean {
  if (samplers.length < 2 || samplers.some((g) => g.to === undefined)) return false;
  const ends = samplers.map((g) => g.to!);
  return Math.max(...ends) - Math.min(...ends) <= RESUMED_TOGETHER_MS;
}

/** /proc/stat counts in USER_HZ (100 on Linux): every figure is a whole number of these, rounded down. */
const STAT_STEP_MS = 10;
/** The longest scheduler tick of any kernel (HZ ≥ 100): steal is added to /proc/stat at ticks and on leaving idle. */
const TICK_MS = 10;

/** `cpu`'s steal time in /proc/stat (the 8th figure of its `cpuN` line), in ms; undefined without one. */
export function stealMs(procStat: string, cpu: number): number | undefined {
  const line = procStat.split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  const steal = line?.trim().split(/\s+/)[8];
  return steal === undefined || !/^\d+$/.test(steal) ? undefined : Number(steal) * STAT_STEP_MS;
}

/**
 * The least time certainly stolen from a CPU between two readings of its steal figure: their difference, less one
 * step for the rounding of each reading, less one tick for steal that happened before the first reading but was
 * added to the figure only after it (a virtual CPU that comes back takes the pending tick at once, so that is never
 * more than a tick). Counted short: too little here only makes a stall count as blind.
 */
export function stolenAtLeast(fromMs: number, toMs: number): number {
  return Math.max(0, toMs - fromMs - STAT_STEP_MS - TICK_MS);
}

/**
 * A blind spot in which the machine stood still: on every CPU (one sampler pinned to each) the time that CPU can have
 * run anything adds up to no more than GAP_LIMIT_MS, so no dual master longer than the limit can have begun and ended
 * in it unseen. Seen on a CI machine: two samplers on two CPUs, each gap 383 ms of which 12 ms slept, waited or ran,
 * their ends as far apart as their starts (each CPU's timer fired on its own schedule after a clock step).
 */
export function stoodStill(spot: SamplingGap): boolean {
  return spot.couldRunMs !== undefined && spot.couldRunMs <= GAP_LIMIT_MS;
}

/**
 * The moments no sampler watched: the intersections of every sampler's gaps (a dual master is seen when any one of
 * them samples during it), those longer than GAP_LIMIT_MS.
 */
export function blindSpots(perSampler: readonly (readonly SamplingGap[])[]): SamplingGap[] {
  let blind: { from: number; to: number; samplers: SamplingGap[] }[] = (perSampler[0] ?? []).map((g) => ({ from: g.from!, to: g.to!, samplers: [g] }));
  for (const gaps of perSampler.slice(1)) {
    const next: typeof blind = [];
    for (const a of blind) {
      for (const b of gaps) {
        const from = Math.max(a.from, b.from!);
        const to = Math.min(a.to, b.to!);
        if (to > from) next.push({ from, to, samplers: [...a.samplers, b] });
      }
    }
    blind = next;
  }
  const wallOffset = Date.now() - Number(process.hrtime.bigint()) / 1e6;
  return blind
    .filter((g) => g.to - g.from > GAP_LIMIT_MS)
    .map((g) => {
      const ms = Math.round(g.to - g.from);
      const together = resumedTogether(g.samplers);
      const perCpu = g.samplers.map((one) => runnableMs(one, together));
      // any CPU that ran in the spot could have changed a listener: their times add up (none longer than the spot)
      const couldRunMs = perCpu.every((r) => r !== undefined) ? Math.min(ms, perCpu.reduce((sum: number, r) => sum + Math.min(ms, r!), 0)) : undefined;
      return { at: Math.round(g.to + wallOffset), ms, from: g.from, to: g.to, samplers: g.samplers, ...(together ? { resumedTogether: true } : {}), ...(couldRunMs === undefined ? {} : { couldRunMs }) };
    });
}

export interface MasterWatchResult {
  samples: number;
  dual: DualMaster[];
  /** Per service IP, how many samples saw a listener at all (a sanity check that the watch sees anything). */
  seen: Record<string, number>;
  /** From the first read of one sample to the last read of the next: the longest time a machine went unread. */
  longestGapMs: number;
  /** Every blind spot over GAP_LIMIT_MS (a moment no sampler watched). */
  gaps: SamplingGap[];
  /** Blind spots over GAP_LIMIT_MS in which the machine stood still (`stoodStill`): reported, not counted as blind. */
  stills?: SamplingGap[];
  /** The longest time one sample spent reading (all machines): tells a slow read from a starved sampler. */
  longestSampleMs: number;
  /** The sampler's scheduling (real-time or not, and why not). */
  priority: string;
}

export interface SamplerConfig {
  namespaces: [string, string][];
  serviceIps: string[];
  lmtpPort: number;
  everyMs: number;
  /** The CPU the sampler is pinned to (its steal time is read), if any. */
  cpu?: number;
}

const READ_BUFFER = Buffer.alloc(64 * 1024);
const COLON = 0x3a;
const NEWLINE = 0x0a;

/** The value of `len` hex digits at `at` (upper case, as the kernel prints them), or -1. */
function hexAt(buf: Buffer, at: number, len: number): number {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = buf[i]!;
    const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/**
 * IPv4 addresses with a LISTEN socket on `port` in the namespace of `pid`. The kernel prints every listening socket
 * first (its listening hash) and only then the connections (established, TIME_WAIT…: under mail load hundreds per
 * namespace, ten times the listeners); each read() returns one page, so reading stops at the first line that is not
 * LISTEN (state 0A): a sample costs a page or two per machine instead of the whole table. The lines are read in place,
 * at their fixed columns ("   N: LLLLLLLL:PPPP RRRRRRRR:PPPP ST …"), making no string but the addresses found: the
 * sampler makes next to no garbage, so no collection pause holds it up.
 */
export function listeners(pid: number, port: number): string[] {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/net/tcp`, 'r');
  } catch {
    return []; // the process is gone (an agent being restarted)
  }
  const out: string[] = [];
  try {
    let kept = 0; // bytes of a line cut at the end of the previous read, moved to the start of the buffer
    let header = true;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, READ_BUFFER, kept, READ_BUFFER.length - kept, null);
      } catch {
        return out; // the process went away between open and read
      }
      if (n === 0) return out;
      const end = kept + n;
      let line = 0;
      for (let nl = READ_BUFFER.indexOf(NEWLINE, 0); nl !== -1 && nl < end; line = nl + 1, nl = READ_BUFFER.indexOf(NEWLINE, line)) {
        if (header) {
          header = false;
          continue;
        }
        const colon = READ_BUFFER.indexOf(COLON, line); // after the slot number
        if (colon === -1 || colon + 32 > nl) continue;
        const state = hexAt(READ_BUFFER, colon + 30, 2);
        if (state !== 0x0a) return out; // past the listening sockets
        if (hexAt(READ_BUFFER, colon + 11, 4) !== port) continue;
        const ip = hexAt(READ_BUFFER, colon + 2, 8); // little-endian: the first octet is the lowest byte
        out.push(`${ip & 0xff}.${(ip >>> 8) & 0xff}.${(ip >>> 16) & 0xff}.${ip >>> 24}`);
      }
      kept = end - line;
      if (kept >= READ_BUFFER.length) return out; // a line longer than the buffer: not this file's format
      READ_BUFFER.copy(READ_BUFFER, 0, line, end);
    }
  } finally {
    closeSync(fd);
  }
}

const SAMPLER = fileURLToPath(new URL('./master-watch-sampler.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const samplers = new Set<ChildProcess>();
// a test process that ends (or dies) takes its samplers with it
process.once('exit', () => {
  for (const child of samplers) child.kill('SIGKILL');
});

/** One sampling process, pinned to `cpu` when given. */
class Sampler {
  private readonly child: ChildProcess;
  private readonly messages: AsyncIterator<string>;
  priority = 'not started';

  constructor(config: SamplerConfig, cpu: number | undefined) {
    // --single-threaded: no V8 background threads (JIT, concurrent GC). At the sampler's real-time priority on its one
    // CPU they took whole 100 ms round-robin slices from its main thread, on both samplers at once (they start
    // together, so they compile together): the blind spots of 100–130 ms seen under load (kernel sched_switch trace)
    const node = [process.execPath, '--single-threaded', '--expose-gc', '--import', 'tsx', SAMPLER, JSON.stringify(config)];
    const [file, ...args] = cpu === undefined ? node : ['taskset', '--cpu-list', String(cpu), ...node];
    this.child = spawn(file!, args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const child = this.child;
    samplers.add(child);
    child.once('exit', () => samplers.delete(child));
    // a test that fails before stop() does not wait for the sampler
    child.unref();
    for (const s of [child.stdin, child.stdout] as unknown as { unref?: () => void }[]) s.unref?.();
    this.messages = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  async next(type: string): Promise<Record<string, unknown>> {
    // held while waiting for an answer, let go otherwise (a test that fails before stop() must not hang on it)
    const out = this.child.stdout as unknown as { ref: () => void; unref: () => void };
    out.ref();
    const line = await this.messages.next().finally(() => out.unref());
    if (line.done) throw new Error(`the master watch's sampler ended before "${type}" (exit ${this.child.exitCode ?? 'unknown'})`);
    const message = JSON.parse(line.value) as { type: string };
    if (message.type !== type) throw new Error(`the master watch's sampler said ${line.value}, not "${type}"`);
    return message as Record<string, unknown>;
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(command: string): void {
    this.child.stdin!.write(`${command}\n`);
  }

  async stop(): Promise<MasterWatchResult> {
    this.send('stop');
    try {
      const { result } = (await this.next('result')) as { result: MasterWatchResult };
      return result;
    } finally {
      const child = this.child;
      child.stdin!.end();
      // it exits once its stdin is closed; by its PID if it does not
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
      clearTimeout(timer);
    }
  }
}

/** A sampler's longest gap, its gaps over the limit that overlap a still counted as the limit. */
function longestOutside(r: MasterWatchResult, stills: readonly SamplingGap[]): number {
  const inStill = (g: SamplingGap) => stills.some((s) => g.from! < s.to! && g.to! > s.from!);
  const outside = r.gaps.filter((g) => !inStill(g)).map((g) => g.ms);
  return Math.max(Math.min(r.longestGapMs, GAP_LIMIT_MS), ...outside);
}

/**
 * Two samplers, one pinned to each of the first two CPUs, sampling side by side: a moment counts as unwatched only
 * when both are in a gap at once. One sampler at real-time priority still saw gaps of 52–75 ms on a loaded 2-core
 * host now and then (its CPU taken by interrupts or the kernel); two on different CPUs are rarely held up together.
 */
export class MasterWatch {
  private samplers: Sampler[] = [];
  private stopped: Promise<MasterWatchResult> | undefined;

  /** `namespaces`: machine name → its network namespace. */
  constructor(
    private readonly namespaces: ReadonlyMap<string, string>,
    private readonly serviceIps: ReadonlySet<string>,
    private readonly lmtpPort = 2003,
  ) {}

  /** Resolves once sampling runs (every sampler's first sample taken): from then on nothing goes unwatched. */
  async start(everyMs = 10): Promise<void> {
    const config: SamplerConfig = { namespaces: [...this.namespaces], serviceIps: [...this.serviceIps], lmtpPort: this.lmtpPort, everyMs };
    const cpuList = availableParallelism() >= 2 ? [0, 1] : [undefined];
    this.samplers = cpuList.map((cpu) => new Sampler(cpu === undefined ? config : { ...config, cpu }, cpu));
    await Promise.all(this.samplers.map((s) => s.next('ready')));
    for (const s of this.samplers) s.priority = await this.raise(s.pid);
    for (const s of this.samplers) s.send('go');
    await Promise.all(this.samplers.map((s) => s.next('started')));
  }

  /**
   * Real time for the sampler's main thread (where it samples), so that it preempts the busy workload instead of
   * queueing behind it; not for its other threads (the module loader's, libuv's), which must never share its CPU with
   * it at the same priority;
   * but not where the namespaces share the host's TCP table: there each read walks the whole table (milliseconds),
   * and a real-time sampler would take the CPU from the cluster under test.
   */
  private async raise(pid: number): Promise<string> {
    const [, ns] = [...this.namespaces][0] ?? [];
    const table = ns ? await execa('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/tcp_ehash_entries'], { reject: false }) : undefined;
    // negative: the namespace has no table of its own (see the kernel's ip-sysctl documentation)
    if (table?.exitCode === 0 && Number(table.stdout) < 0) return 'normal: the namespaces share the host\'s TCP table, every read walks it (give them tables of their own: net.ipv4.tcp_child_ehash_entries)';
    const rt = await execa('chrt', ['--rr', '--pid', '1', String(pid)], { reject: false });
    return rt.exitCode === 0 ? 'SCHED_RR 1' : `normal (chrt failed: ${String(rt.stderr || rt.message).trim()})`;
  }

  /**
   * Holds every sampler up for `ms` from `inMs` from now, all over the same moment (its unit test shows that a blind
   * spot is reported). Returns that moment on CLOCK_MONOTONIC.
   */
  stallForTest(inMs: number, ms: number): { from: number; to: number } {
    const from = Number(process.hrtime.bigint()) / 1e6 + inMs;
    for (const s of this.samplers) s.send(`stall ${from},${ms}`);
    return { from, to: from + ms };
  }

  /**
   * Stops every sampler (SIGSTOP) for `ms`, then lets it go on: to the sampler this looks as its CPU standing still
   * (asleep past its timer, neither waiting nor running), the case its unit test shows is told from a blind spot.
   */
  async freezeForTest(ms: number): Promise<{ from: number; to: number }> {
    const from = Number(process.hrtime.bigint()) / 1e6;
    for (const s of this.samplers) process.kill(s.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, ms));
    for (const s of this.samplers) process.kill(s.pid, 'SIGCONT');
    return { from, to: Number(process.hrtime.bigint()) / 1e6 };
  }

  /** Stops sampling (after one last sample each) and returns what the watch saw; the same answer if called again. */
  stop(): Promise<MasterWatchResult> {
    if (this.samplers.length === 0) return Promise.reject(new Error('the master watch was never started'));
    this.stopped ??= (async () => {
      const results = await Promise.all(this.samplers.map((s) => s.stop()));
      const seen: Record<string, number> = {};
      for (const r of results) for (const [ip, n] of Object.entries(r.seen)) seen[ip] = (seen[ip] ?? 0) + n;
      const spots = blindSpots(results.map((r) => r.gaps));
      const gaps = spots.filter((g) => !stoodStill(g));
      const stills = spots.filter(stoodStill);
      return {
        samples: results.reduce((n, r) => n + r.samples, 0),
        dual: results.flatMap((r) => r.dual).sort((a, b) => a.at - b.at),
        seen,
        // the longest blind spot over the limit, or else the best any one sampler did alone outside the stills (a gap
        // of its own over the limit inside one counts as the limit)
        longestGapMs: gaps.length ? Math.max(...gaps.map((g) => g.ms)) : Math.min(...results.map((r) => longestOutside(r, stills))),
        gaps,
        stills,
        longestSampleMs: Math.max(...results.map((r) => r.longestSampleMs)),
        priority: `${this.samplers.length} sampler(s) ${this.samplers.map((s) => s.priority).join(' / ')}; each one's longest gap ${results.map((r) => r.longestGapMs).join(' / ')} ms`,
      };
    })();
    return this.stopped;
  }
}
