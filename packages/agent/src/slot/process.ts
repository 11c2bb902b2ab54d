// Small process helpers for cyrmaster: is a PID alive, is it our slot's master, signal a whole process group,
// wait for the IMAP greeting.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';

/** True while `pid` runs; a zombie (killed, not yet reaped by a parent that may be gone) counts as gone. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Signals every process of the group led by `pid` (cyrmaster runs in its own session). */
export function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/**
 * SIGTERM to cyrmaster, SIGKILL of its group after `timeoutMs` (`onTimeout` says so first), and of whatever is left of
 * the group once it has exited: children that outlived their master must not hold the slot's ports. `exited`: its exit
 * as its parent sees it (our child); otherwise it is polled.
 */
export async function terminateMaster(pid: number, exited: PromiseLike<unknown> | undefined, timeoutMs: number, onTimeout: () => void): Promise<void> {
  const gone = exited ?? waitGone(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const timer = setTimeout(() => {
    onTimeout();
    signalGroup(pid, 'SIGKILL');
  }, timeoutMs);
  await gone;
  clearTimeout(timer);
  signalGroup(pid, 'SIGKILL');
}

/** Resolves once `pid` is gone (a process that is not our child: polled). */
export function waitGone(pid: number, everyMs = 50): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!pidAlive(pid)) {
        clearInterval(timer);
        resolve();
      }
    }, everyMs);
  });
}

export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when `pid` is a cyrmaster started with this slot's imapd.conf and leads its own process group. */
export function isSlotMaster(pid: number, imapdConf: string): boolean {
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pgid = Number(fields[2]);
    const cIndex = args.indexOf('-C');
    return pgid === pid && /(^|\/)(master|cyrmaster)$/.test(args[0] ?? '') && cIndex >= 0 && args[cIndex + 1] === imapdConf;
  } catch {
    return false;
  }
}

/** The direct children of `parent` (none when it is gone). */
function childPids(parent: number): number[] {
  try {
    return readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** PIDs of the direct children of `parent` whose program name is one of `names` (a path's last part counts). */
function childrenNamedAny(parent: number, names: readonly string[]): number[] {
  const out: number[] = [];
  for (const pid of childPids(parent)) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (names.includes(argv0.slice(argv0.lastIndexOf('/') + 1))) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** PIDs of the direct children of `parent` whose program name ends with `name` (e.g. the rolling sync_client). */
export function childrenNamed(parent: number, name: string): number[] {
  return childrenNamedAny(parent, [name]);
}

/** A process as it was seen: its PID and start time, so that a PID taken by another process later is not it. */
export interface ProcessRef {
  pid: number;
  /** /proc/PID/stat field 22: clock ticks after boot when it started. */
  started: string;
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The direct children of `parent` now whose program name is one of `names`. */
export function childProcesses(parent: number, names: readonly string[]): ProcessRef[] {
  const out: ProcessRef[] = [];
  for (const pid of childrenNamedAny(parent, names)) {
    const started = startTime(pid);
    if (started !== undefined) out.push({ pid, started });
  }
  return out;
}

/** Signals each process of `refs` that still runs (the same process, not a later one with its PID); how many. */
export function signalStillRunning(refs: readonly ProcessRef[], signal: NodeJS.Signals): number {
  let signalled = 0;
  for (const ref of refs) {
    if (startTime(ref.pid) !== ref.started || !pidAlive(ref.pid)) continue;
    try {
      process.kill(ref.pid, signal);
      signalled++;
    } catch {
      // gone meanwhile
    }
  }
  return signalled;
}

/** Resolves when host:port sends a line starting with "* OK" (the IMAP greeting). */
export function imapGreets(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let data = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('data', (chunk) => {
      data += chunk.toString('latin1');
      if (data.includes('\n')) done(data.startsWith('* OK'));
    });
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
  });
}

/** True when something accepts TCP on host:port. */
export function tcpAccepts(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Every TCP socket of this network namespace, from /proc/net/tcp{,6}: local and remote ends (ADDR:PORT, hex) and state. */
async function procSockets(): Promise<{ local: string; remote: string; state: string }[]> {
  const out: { local: string; remote: string; state: string }[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (local && remote && state) out.push({ local: local.toUpperCase(), remote: remote.toUpperCase(), state });
    }
  }
  return out;
}

const procEnds = (ip: string, port: number) => {
  const portHex = port.toString(16).padStart(4, '0').toUpperCase();
  return new Set(procAddresses(ip).map((a) => `${a}:${portHex}`));
};

/**
 * TCP sockets whose local end is ip:port, from /proc/net/tcp{,6} of this network namespace: `listening` (a listener
 * that can still accept a new delivery) and `established` (a delivery still in flight on a service IP). Sockets on
 * the same port but another address (the other slots' service IPs, a wildcard listener) are not counted.
 */
export async function socketsAt(ip: string, port: number): Promise<{ listening: number; established: number }> {
  const wanted = procEnds(ip, port);
  const found = { listening: 0, established: 0 };
  for (const s of await procSockets()) {
    if (!wanted.has(s.local)) continue;
    if (s.state === '01') found.established++; // ESTABLISHED
    else if (s.state === '0A') found.listening++; // LISTEN
  }
  return found;
}

/** Established TCP connections of this network namespace to ip:port (a sync_client connected to its replica). */
export async function connectionsTo(ip: string, port: number): Promise<number> {
  const wanted = procEnds(ip, port);
  return (await procSockets()).filter((s) => s.state === '01' && wanted.has(s.remote)).length;
}

/**
 * An address as /proc/net/tcp{,6} prints it: each 32-bit word in host (little-endian) byte order, in hex. An IPv4
 * address also appears in tcp6 as ::ffff:a.b.c.d (a dual-stack socket).
 */
export function procAddresses(ip: string): string[] {
  const words = (bytes: number[]) =>
    Array.from({ length: bytes.length / 4 }, (_, w) => bytes.slice(w * 4, w * 4 + 4).reverse().map((b) => b.toString(16).padStart(2, '0')).join('')).join('').toUpperCase();
  if (net.isIP(ip) === 4) {
    const v4 = ip.split('.').map(Number);
    return [words(v4), words([...new Array<number>(10).fill(0), 0xff, 0xff, ...v4])];
  }
  if (net.isIP(ip) !== 6) throw new Error(`not an IP address: ${ip}`);
  return [words(ipv6Bytes(ip))];
}

/** The 16 bytes of an IPv6 address (with `::` and an IPv4 tail). */
function ipv6Bytes(ip: string): number[] {
  const groups = (part: string): number[] => {
    if (!part) return [];
    return part.split(':').flatMap((g) => {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
        return [(a << 8) | b, (c << 8) | d];
      }
      return [parseInt(g, 16)];
    });
  };
  const [head = '', tail] = ip.split('::');
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}
