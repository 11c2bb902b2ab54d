// A split-brain checker for the namespace cluster, from the kernel's own record: two machines listening for LMTP on
// one service IP at the same moment are two slots accepting mail for one store. The watch enables the kernel's
// `sock:inet_sock_set_state` trace event in a tracing instance of its own (tracefs), filtered to IPv4 sockets on the
// LMTP port entering or leaving LISTEN. The kernel writes each event, with its CLOCK_MONOTONIC time, in the context
// of the process that listens or closes, into a per-CPU ring buffer: nothing has to be scheduled for a listener to
// be seen, so a busy or paused host cannot blind the watch, and a dual master is found however short it was. What
// listened when the watch started comes from one reading of every machine's table; `stop()` replays the events from
// there and returns every moment with two listeners on one IP, how long it lasted, and whether the record is whole
// (events the ring buffer overwrote are counted: a watch that lost any fails the check).
//
// It replaces sampling /proc/PID/net/tcp every 10 ms, which had to prove it never looked away for over 50 ms on a
// virtual machine whose CPUs stall, are stolen and run a read 60 ms long (seen on CI): each such gap failed a test
// that had no dual master in it.
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';

/** Where tracefs is mounted (mounted there by the watch when it is not). */
export const TRACEFS = '/sys/kernel/tracing';
/** The prefix of the watch's tracing instances (`pnpm test:cleanup` removes those a killed run left). */
export const INSTANCE_PREFIX = 'slotctl-watch-';
const EVENT = 'events/sock/inet_sock_set_state';
const TCP_LISTEN = 10;
const AF_INET = 2;

export interface DualMaster {
  /** Wall-clock start of the moment two listeners were up. */
  at: number;
  ip: string;
  /** How long it lasted (to the end of the watch if it had not ended). */
  ms: number;
  /** Who listened: a machine, or the process that listened when its machine could not be told. */
  machines: string[];
}

export interface MasterWatchResult {
  /** From the opening reading to the stop, on CLOCK_MONOTONIC. */
  watchedMs: number;
  dual: DualMaster[];
  /** Per service IP, the share of the watched time (0–1) in which something listened for LMTP on it. */
  listening: Record<string, number>;
  /** Listener starts and ends on the service IPs the kernel recorded while watching. */
  changes: number;
  /** Events the ring buffer lost before they were read: the record is not whole. */
  lost: number;
  /** Records that do not fit what the watch knew (a listener ended that it never saw start): a bug in the watch. */
  inconsistent: string[];
}

/** One listener starting or ending, as the kernel recorded it. */
export interface ListenEvent {
  /** CLOCK_MONOTONIC ms. */
  at: number;
  ip: string;
  listen: boolean;
  pid: number;
  task: string;
}

const LINE = /^\s*(.*)-(\d+)\s+\[\d+\]\s+(?:\S+\s+)?(\d+\.\d+): inet_sock_set_state: family=AF_INET .*?\bsport=(\d+) dport=(\d+) saddr=([\d.]+) .*?\boldstate=(\w+) newstate=(\w+)/;
const LOST = /\[LOST (\d+) EVENTS\]/;
const WRITTEN = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/;

/** The listener events on `port` in a tracing instance's `trace` text, and how many events it says were lost. */
export function parseTrace(text: string, port: number): { events: ListenEvent[]; lost: number } {
  const events: ListenEvent[] = [];
  let lost = 0;
  for (const line of text.split('\n')) {
    const written = WRITTEN.exec(line);
    if (written) lost += Math.max(0, Number(written[2]) - Number(written[1]));
    const dropped = LOST.exec(line);
    if (dropped && !written) lost += Number(dropped[1]);
    const m = LINE.exec(line);
    if (!m) continue;
    const [, task, pid, seconds, sport, dport, ip, from, to] = m;
    // a connection accepted from a listener leaves LISTEN too (as its child): it has a peer port
    if (Number(sport) !== port || Number(dport) !== 0 || (from === 'TCP_LISTEN') === (to === 'TCP_LISTEN')) continue;
    events.push({ at: Number(seconds) * 1000, ip: ip!, listen: to === 'TCP_LISTEN', pid: Number(pid), task: task!.trim() });
  }
  return { events, lost };
}

/** IPv4 addresses listening on `port` in a /proc/net/tcp text (state 0A). */
export function listenersIn(procNetTcp: string, port: number): string[] {
  const out: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (state !== '0A' || !local) continue;
    const [hexIp, hexPort] = local.split(':');
    if (parseInt(hexPort!, 16) !== port) continue;
    const n = parseInt(hexIp!, 16); // little-endian: the first octet is the lowest byte
    out.push(`${n & 0xff}.${(n >>> 8) & 0xff}.${(n >>> 16) & 0xff}.${n >>> 24}`);
  }
  return out;
}

/** A listener the replay holds: the machine it was read on, or the process that started it. */
interface Holder {
  label: string;
  pid?: number;
}

/**
 * Replays listener events from an opening reading (`initial`: IP → machines listening at `from`) to `to` (both
 * CLOCK_MONOTONIC ms): every stretch with two or more listeners on one IP, each IP's listening share, and events that
 * do not fit. `label` names the process of an event (its machine, when that can be told).
 */
export function replay(
  initial: ReadonlyMap<string, readonly string[]>,
  events: readonly ListenEvent[],
  from: number,
  to: number,
  ips: ReadonlySet<string>,
  label: (e: ListenEvent) => string = (e) => `pid ${e.pid} (${e.task})`,
  wallOffset = 0,
): Pick<MasterWatchResult, 'dual' | 'listening' | 'changes' | 'inconsistent'> & { watchedMs: number } {
  const holders = new Map<string, Holder[]>();
  for (const ip of ips) holders.set(ip, (initial.get(ip) ?? []).map((m) => ({ label: m })));
  const since = new Map<string, number>(); // when the IP last gained a first listener
  const dualSince = new Map<string, { at: number; machines: string[] }>();
  const listenedMs = new Map<string, number>();
  const dual: DualMaster[] = [];
  const inconsistent: string[] = [];
  for (const [ip, h] of holders) if (h.length) since.set(ip, from);
  const opened = (ip: string, at: number) => {
    const h = holders.get(ip)!;
    if (h.length > 1 && !dualSince.has(ip)) dualSince.set(ip, { at, machines: h.map((x) => x.label) });
  };
  for (const ip of ips) opened(ip, from);
  let changes = 0;
  for (const e of events) {
    if (e.at <= from || e.at > to || !ips.has(e.ip)) continue;
    changes++;
    const h = holders.get(e.ip)!;
    if (e.listen) {
      if (h.length === 0) since.set(e.ip, e.at);
      h.push({ label: label(e), pid: e.pid });
      opened(e.ip, e.at);
      continue;
    }
    if (h.length === 0) {
      inconsistent.push(`${e.ip}: a listener ended at ${e.at.toFixed(3)} (pid ${e.pid}) with none known to be up`);
      continue;
    }
    // which one ended cannot always be told (the closing process may be another than the listening one): the same
    // process's if there is one, else one read at the start, else the oldest — only the labels of a dual depend on it
    const same = h.findIndex((x) => x.pid === e.pid);
    h.splice(same !== -1 ? same : Math.max(0, h.findIndex((x) => x.pid === undefined)), 1);
    const d = dualSince.get(e.ip);
    if (d && h.length < 2) {
      dual.push({ at: Math.round(d.at + wallOffset), ip: e.ip, ms: Math.round((e.at - d.at) * 1000) / 1000, machines: d.machines });
      dualSince.delete(e.ip);
    }
    if (h.length === 0) listenedMs.set(e.ip, (listenedMs.get(e.ip) ?? 0) + e.at - since.get(e.ip)!);
  }
  for (const [ip, d] of dualSince) dual.push({ at: Math.round(d.at + wallOffset), ip, ms: Math.round((to - d.at) * 1000) / 1000, machines: d.machines });
  for (const [ip, h] of holders) if (h.length) listenedMs.set(ip, (listenedMs.get(ip) ?? 0) + to - since.get(ip)!);
  const watchedMs = to - from;
  const listening: Record<string, number> = {};
  for (const ip of ips) listening[ip] = watchedMs > 0 ? (listenedMs.get(ip) ?? 0) / watchedMs : 0;
  return { watchedMs, dual: dual.sort((a, b) => a.at - b.at), listening, changes, inconsistent };
}

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
let instances = 0;

/** Mounts tracefs where it belongs if it is not (a host that never traced has it unmounted). */
async function ensureTracefs(): Promise<void> {
  if (existsSync(`${TRACEFS}/instances`)) return;
  const mounted = await execa('mount', ['-t', 'tracefs', 'nodev', TRACEFS], { reject: false });
  if (!existsSync(`${TRACEFS}/instances`)) {
    throw new Error(`the split-brain watch needs tracefs at ${TRACEFS} (mount -t tracefs nodev ${TRACEFS}, as root): ${String(mounted.stderr || mounted.message).trim()}`);
  }
}

/**
 * Watches every machine (a name → its network namespace) for two LMTP listeners on one of `serviceIps`.
 * `bufferKb`: the ring buffer per CPU (its unit test makes it small enough to lose events).
 */
export class MasterWatch {
  private dir: string | undefined;
  private from = 0;
  private initial = new Map<string, string[]>();
  private stopped: Promise<MasterWatchResult> | undefined;

  constructor(
    private readonly namespaces: ReadonlyMap<string, string>,
    private readonly serviceIps: ReadonlySet<string>,
    private readonly lmtpPort = 2003,
    private readonly bufferKb = 2048,
  ) {}

  /** Resolves once the kernel records every listener change and the opening reading is taken. */
  async start(): Promise<void> {
    await ensureTracefs();
    this.dir = `${TRACEFS}/instances/${INSTANCE_PREFIX}${process.pid}-${++instances}`;
    mkdirSync(this.dir);
    try {
      await this.record();
    } catch (err) {
      this.remove(); // a failed start leaves no instance recording behind
      throw err;
    }
  }

  private async record(): Promise<void> {
    writeFileSync(`${this.dir}/trace_clock`, 'mono'); // the clock of process.hrtime: the reading's times compare
    writeFileSync(`${this.dir}/buffer_size_kb`, String(this.bufferKb));
    writeFileSync(`${this.dir}/${EVENT}/filter`, `family == ${AF_INET} && sport == ${this.lmtpPort} && dport == 0 && (newstate == ${TCP_LISTEN} || oldstate == ${TCP_LISTEN})`);
    writeFileSync(`${this.dir}/${EVENT}/enable`, '1');
    // the opening reading: listeners at `from` are those read in it; a change recorded while it was being taken
    // cannot be placed before or after it, so it is taken again
    for (let attempt = 1; ; attempt++) {
      const begin = monotonicMs();
      const read = await Promise.all([...this.namespaces].map(async ([m, ns]) => {
        const tcp = await execa('ip', ['netns', 'exec', ns, 'cat', '/proc/net/tcp'], { reject: false });
        return [m, tcp.exitCode === 0 ? listenersIn(tcp.stdout, this.lmtpPort) : []] as const;
      }));
      const end = monotonicMs();
      await new Promise((r) => setTimeout(r, 5)); // an event stamped within the reading is in the buffer by now
      const during = parseTrace(readFileSync(`${this.dir}/trace`, 'utf8'), this.lmtpPort).events.filter((e) => e.at >= begin && e.at <= end && this.serviceIps.has(e.ip));
      if (during.length === 0) {
        this.initial = new Map();
        for (const [m, ips] of read) for (const ip of ips) if (this.serviceIps.has(ip)) this.initial.set(ip, [...(this.initial.get(ip) ?? []), m]);
        this.from = end;
        return;
      }
      if (attempt === 10) {
        throw new Error(`the split-brain watch could not take an opening reading: listeners changed during each of ${attempt} readings`);
      }
    }
  }

  /** Stops recording and returns what the watch saw; the same answer if called again. */
  stop(): Promise<MasterWatchResult> {
    if (!this.dir) return Promise.reject(new Error('the master watch was never started'));
    this.stopped ??= (async () => {
      const to = monotonicMs();
      const dir = this.dir!;
      let text: string;
      try {
        writeFileSync(`${dir}/tracing_on`, '0');
        text = readFileSync(`${dir}/trace`, 'utf8');
      } finally {
        this.remove();
      }
      const { events, lost } = parseTrace(text, this.lmtpPort);
      // an event's process is told to a machine by its network namespace, while it still runs
      const machineOf = new Map<number, string>();
      for (const [m, ns] of this.namespaces) {
        try {
          machineOf.set(statSync(`/run/netns/${ns}`).ino, m);
        } catch {
          // gone: its processes are labelled by PID
        }
      }
      const label = (e: ListenEvent): string => {
        try {
          const ino = Number(/\[(\d+)\]/.exec(readlinkSync(`/proc/${e.pid}/ns/net`))?.[1]);
          return machineOf.get(ino) ?? `pid ${e.pid} (${e.task})`;
        } catch {
          return `pid ${e.pid} (${e.task}, gone)`;
        }
      };
      const wallOffset = Date.now() - monotonicMs();
      return { ...replay(this.initial, events, this.from, to, this.serviceIps, label, wallOffset), lost };
    })();
    return this.stopped;
  }

  private remove(): void {
    if (!this.dir) return;
    try {
      writeFileSync(`${this.dir}/${EVENT}/enable`, '0');
      rmdirSync(this.dir);
    } catch {
      // left for pnpm test:cleanup
    }
  }
}

/** Removes tracing instances a killed run left (`pnpm test:cleanup`); returns their names. */
export function removeWatchInstances(): string[] {
  const left = readdirSafe(`${TRACEFS}/instances`).filter((n) => n.startsWith(INSTANCE_PREFIX));
  for (const name of left) {
    try {
      rmdirSync(`${TRACEFS}/instances/${name}`);
    } catch {
      // still in use
    }
  }
  return left;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
