// A split-brain checker for the namespace cluster: every few milliseconds it reads each machine's listening TCP
// sockets (/proc/PID/net/tcp of a process inside that machine's namespace, no process spawned) and records every
// moment at which more than one machine listens for LMTP on the same service IP — two slots accepting mail for one
// store. Runs in the test process; `stop()` returns what it saw.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

export interface DualMaster {
  at: number;
  ip: string;
  machines: string[];
}

export interface MasterWatchResult {
  samples: number;
  dual: DualMaster[];
  /** Per service IP, how many samples saw a listener at all (a sanity check that the watch sees anything). */
  seen: Record<string, number>;
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

/** Some process inside the named network namespace (found by the namespace's inode), or undefined. */
export function pidInNamespace(ns: string, hint?: number): number | undefined {
  let link: string;
  try {
    link = `net:[${statSync(`/run/netns/${ns}`).ino}]`;
  } catch {
    return undefined;
  }
  const inNs = (pid: number) => {
    try {
      return readlinkSync(`/proc/${pid}/ns/net`) === link;
    } catch {
      return false;
    }
  };
  if (hint && inNs(hint)) return hint;
  for (const entry of readdirSync('/proc')) if (/^\d+$/.test(entry) && inNs(Number(entry))) return Number(entry);
  return undefined;
}

export class MasterWatch {
  private timer: NodeJS.Timeout | undefined;
  private readonly result: MasterWatchResult = { samples: 0, dual: [], seen: {} };

  private readonly pids = new Map<string, number>();

  /** `namespaces`: machine name → its network namespace. */
  constructor(
    private readonly namespaces: ReadonlyMap<string, string>,
    private readonly serviceIps: ReadonlySet<string>,
    private readonly lmtpPort = 2003,
  ) {}

  start(everyMs = 10): void {
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const byIp = new Map<string, string[]>();
    for (const [m, ns] of this.namespaces) {
      const pid = pidInNamespace(ns, this.pids.get(m));
      if (!pid) continue;
      this.pids.set(m, pid);
      for (const ip of listeners(pid, this.lmtpPort)) {
        if (!this.serviceIps.has(ip)) continue;
        byIp.set(ip, [...(byIp.get(ip) ?? []), m]);
      }
    }
    this.result.samples++;
    for (const [ip, machines] of byIp) {
      this.result.seen[ip] = (this.result.seen[ip] ?? 0) + 1;
      if (machines.length > 1) this.result.dual.push({ at: Date.now(), ip, machines });
    }
  }

  stop(): MasterWatchResult {
    clearInterval(this.timer);
    return this.result;
  }
}
