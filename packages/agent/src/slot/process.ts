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

/** PIDs of the direct children of `parent` whose program name ends with `name` (e.g. the rolling sync_client). */
export function childrenNamed(parent: number, name: string): number[] {
  const out: number[] = [];
  let entries: string[];
  try {
    entries = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  } catch {
    return out;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      if (argv0 === name || argv0.endsWith(`/${name}`)) out.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
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

/**
 * TCP sockets whose local end is ip:port, from /proc/net/tcp{,6} of this network namespace: `listening` (a listener
 * that can still accept a new delivery) and `established` (a delivery still in flight on a service IP).
 */
export async function socketsAt(ip: string, port: number): Promise<{ listening: number; established: number }> {
  const { readFile } = await import('node:fs/promises');
  const want4 = ip.includes(':') ? undefined : `${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).reverse().join('')}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
  const found = { listening: 0, established: 0 };
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if ((state !== '01' && state !== '0A') || !local) continue; // 01 ESTABLISHED, 0A LISTEN
      const portHex = local.slice(local.lastIndexOf(':') + 1);
      if (parseInt(portHex, 16) !== port) continue;
      if (want4 && !(local === want4 || local.endsWith(`FFFF0000${want4.slice(0, 8)}:${portHex}`))) continue;
      if (state === '01') found.established++;
      else found.listening++;
    }
  }
  return found;
}
