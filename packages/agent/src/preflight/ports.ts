// Are a slot's ports free on its addresses? cyrmaster binds its listeners once, at start, and one that finds a port
// taken never greets (the ready timeout, then a crash loop that says nothing of the port). The listeners are read from
// /proc/net/tcp{,6} (one read shared by the slots checked within a moment); who holds one is looked up in /proc/*/fd
// only when something does.
import { readdir, readFile, readlink } from 'node:fs/promises';
import { pidAlive } from '../slot/process.js';
import net from 'node:net';
import { procAddresses } from '../slot/process.js';
import { DEBIAN_CYRUS_FIX, isDebianCyrusMaster } from './debian-cyrus.js';

export interface ListenAddress {
  ip: string;
  port: number;
}

/** Pure: every `listen="IP:PORT"` (or `[IPv6]:PORT`) of a rendered cyrus.conf: what cyrmaster will bind. */
export function listenAddresses(cyrusConf: string): ListenAddress[] {
  const out: ListenAddress[] = [];
  for (const m of cyrusConf.matchAll(/\blisten="(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})"/g)) {
    const ip = m[1] ?? m[2]!;
    const port = Number(m[3]);
    if (net.isIP(ip) && port > 0 && port < 65536 && !out.some((a) => a.ip === ip && a.port === port)) out.push({ ip, port });
  }
  return out;
}

/** A listening socket: its local end as /proc prints it (hex ADDR:PORT) and its inode. */
interface Listener {
  local: string;
  inode: string;
}

const LISTEN = '0A';
let snapshot: { at: number; listeners: Promise<Listener[]> } | undefined;

/** The namespace's TCP listeners; slots checked within `maxAgeMs` of each other share one read. */
export function listeners(maxAgeMs = 500): Promise<Listener[]> {
  if (snapshot && performance.now() - snapshot.at <= maxAgeMs) return snapshot.listeners;
  const read = (async () => {
    const out: Listener[] = [];
    for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const line of text.split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (f[3] === LISTEN && f[1] && f[9]) out.push({ local: f[1].toUpperCase(), inode: f[9] });
      }
    }
    return out;
  })();
  snapshot = { at: performance.now(), listeners: read };
  return read;
}

const hexPort = (port: number) => port.toString(16).padStart(4, '0').toUpperCase();
const V4_ANY = '00000000';
const V6_ANY = '0'.repeat(32);

/**
 * Listeners that stop cyrmaster binding ip:port: the address itself (also as ::ffff:a.b.c.d), and a listener on every
 * address of the port. A v6 wildcard is counted for an IPv4 address too: a dual-stack socket (Go's and Node's default)
 * holds both; only a v6-only one, which /proc cannot tell apart, would be a false alarm.
 */
function blocking(all: readonly Listener[], at: ListenAddress): { listener: Listener; wildcard: boolean }[] {
  const port = hexPort(at.port);
  const exact = new Set(procAddresses(at.ip).map((a) => `${a}:${port}`));
  const any = new Set([...(net.isIP(at.ip) === 4 ? [`${V4_ANY}:${port}`] : []), `${V6_ANY}:${port}`]);
  return all.filter((l) => exact.has(l.local) || any.has(l.local)).map((listener) => ({ listener, wildcard: any.has(listener.local) }));
}

/**
 * Resolves true once no listener holds any of `addresses` itself (wildcards, which another program may hold, aside),
 * read fresh every 50 ms; false after `timeoutMs`. A stopped cyrmaster's children die a moment after it (the SIGKILL
 * to its group is not waited for), and a listen socket they share is released with the last of them.
 */
export async function waitPortsFree(addresses: readonly ListenAddress[], timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const all = await listeners(0);
    const held = addresses.some((a) => blocking(all, a).some((f) => !f.wildcard));
    if (!held) return true;
    if (performance.now() >= end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface SocketOwner {
  pid: number;
  /** Its process group (the group of a slot's cyrmaster is the master's PID). */
  pgid: number;
  command: string;
  args: string[];
}

/** The processes holding these socket inodes (those whose /proc/PID/fd this agent may read). */
export async function socketOwners(inodes: ReadonlySet<string>): Promise<SocketOwner[]> {
  const out: SocketOwner[] = [];
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    let holds = false;
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target.startsWith('socket:[') && inodes.has(target.slice(8, -1))) {
        holds = true;
        break;
      }
    }
    if (!holds) continue;
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const pgid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    out.push({ pid: Number(pid), pgid, args, command: args.join(' ').slice(0, 200) || '?' });
  }
  return out;
}

const show = (a: ListenAddress) => (a.ip.includes(':') ? `[${a.ip}]:${a.port}` : `${a.ip}:${a.port}`);

/**
 * Why cyrmaster could not bind each of `wanted`: `IP:PORT is taken by pid N (COMMAND)` with what to do. Listeners of
 * the slot's own cyrmaster (`ownMaster`, and its children: its process group), which may be re-adopted, are not.
 */
export async function portProblems(wanted: readonly ListenAddress[], ownMaster: number | undefined): Promise<string[]> {
  // the slot's own cyrmaster runs (to be re-adopted): the ports are its. Not left to the owner search below, which
  // needs CAP_SYS_PTRACE to see the sockets of a process of another user (cyrus) and would otherwise call it foreign
  if (ownMaster !== undefined && pidAlive(ownMaster)) return [];
  let all = await listeners();
  let fresh = false;
  const problems: string[] = [];
  for (const at of wanted) {
    let found = blocking(all, at);
    if (found.length === 0) continue;
    let owners = await socketOwners(new Set(found.map((f) => f.listener.inode)));
    if (owners.length === 0 && !fresh) {
      // nobody holds it: the shared read may be older than the exit of its holder — the slot's own cyrmaster, stopped
      // a moment ago for a change of role (the soak, seed 20261204: a new master refused, its store down 8 minutes)
      all = await listeners(0);
      fresh = true;
      found = blocking(all, at);
      if (found.length === 0) continue;
      owners = await socketOwners(new Set(found.map((f) => f.listener.inode)));
    }
    if (ownMaster && owners.length > 0 && owners.every((o) => o.pid === ownMaster || o.pgid === ownMaster)) continue;
    // the master of a group first: it is what an operator stops (its children hold the same socket)
    const owner = owners.find((o) => o.pid === o.pgid) ?? owners[0];
    const wildcard = found.every((f) => f.wildcard) ? `, which listens on every address (${net.isIP(at.ip) === 4 && found.some((f) => f.listener.local.startsWith(V4_ANY)) ? '0.0.0.0' : '[::]'}:${at.port})` : '';
    const who = owner ? `pid ${owner.pid} (${owner.command})` : 'a process this agent cannot see (another user or namespace)';
    const debian = owners.some((o) => isDebianCyrusMaster(o.args) || owners.some((m) => m.pid === o.pgid && isDebianCyrusMaster(m.args)));
    const fix = debian ? `Debian's own Cyrus (cyrus-imapd.service) holds it: ${DEBIAN_CYRUS_FIX}` : 'stop that program, or give the slots other ports (--imap-port, --lmtp-port, --sync-port)';
    problems.push(`${show(at)} is taken by ${who}${wildcard}: ${fix}`);
  }
  return problems;
}
