// The interface's IPv4 addresses, kept in memory: one long-lived `ip -o -4 monitor address` reports every change
// as it happens, and a full list every `resyncMs` is the safety net (a netlink buffer that overflowed, a monitor
// that died). Listing with one `ip` process per look cost more than anything else the agent did: profiled during a
// 5 x 8 cluster start on a saturated 2-core host, spawning `ip` for the 500 ms reconciliation and the bind checks took
// ~10 s of the agent's 73 s of CPU (each fork of a 100 MB process is milliseconds of its event loop).
//
// The set is for noticing drift cheaply; whoever acts on it confirms with a fresh `ip` call first (IpVipDriver.isBound).
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '@slotctl/shared/base';

/** One line of `ip -o -4 monitor address` or `ip -o -4 addr show`: the interface, the address, added or deleted. */
export function parseAddressLine(line: string): { iface: string; ip: string; deleted: boolean } | undefined {
  const m = /^(Deleted\s+)?\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\//.exec(line.trim());
  return m ? { deleted: m[1] !== undefined, iface: m[2]!, ip: m[3]! } : undefined;
}

export interface AddressWatchOptions {
  iface: string;
  log: Logger;
  /** Something changed on the interface (a reconciliation may be due). */
  onChange: () => void;
  resyncMs?: number;
}

export class AddressWatch {
  private readonly addrs = new Set<string>();
  private fresh = false;
  private monitor: ResultPromise | undefined;
  private resync: NodeJS.Timeout | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: AddressWatchOptions) {}

  /** The addresses now, or undefined while the watch is not known to be current (then ask `ip`). */
  snapshot(): ReadonlySet<string> | undefined {
    return this.fresh ? new Set(this.addrs) : undefined;
  }

  /** Our own add or delete, known before the monitor's line about it arrives. */
  note(ip: string, bound: boolean): void {
    if (bound) this.addrs.add(ip);
    else this.addrs.delete(ip);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.startMonitor();
    await this.list(); // after the monitor started: nothing between the two is missed
    const every = this.options.resyncMs ?? 5000;
    this.resync = setInterval(() => void this.list(), every);
    this.resync.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.resync);
    clearTimeout(this.restart);
    this.monitor?.kill();
    this.fresh = false;
  }

  private async list(): Promise<void> {
    // bounded as every one-shot `ip` is (IP_COMMAND_TIMEOUT_MS in vip/ip.ts, not imported: ip.ts imports this file):
    // a listing that never ends would leave the view stale for good
    const result = await execa('ip', ['-o', '-4', 'addr', 'show', 'dev', this.options.iface], { reject: false, timeout: 5000, killSignal: 'SIGKILL' });
    if (result.exitCode !== 0) {
      this.fresh = false;
      this.options.log.warn({ iface: this.options.iface, err: result.timedOut ? 'did not finish within 5 s (killed)' : result.stderr }, 'cannot list the interface\'s addresses');
      return;
    }
    const now = new Set<string>();
    for (const line of result.stdout.split('\n')) {
      const a = parseAddressLine(line);
      if (a && a.iface === this.options.iface) now.add(a.ip);
    }
    const changed = now.size !== this.addrs.size || [...now].some((ip) => !this.addrs.has(ip));
    this.addrs.clear();
    for (const ip of now) this.addrs.add(ip);
    this.fresh = this.monitor !== undefined;
    if (changed) this.options.onChange();
  }

  private startMonitor(): void {
    const child = execa('ip', ['-o', '-4', 'monitor', 'address'], { reject: false, buffer: false, stdin: 'ignore' });
    this.monitor = child;
    let rest = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      let changed = false;
      for (const line of lines) {
        const a = parseAddressLine(line);
        if (!a || a.iface !== this.options.iface) continue;
        if (a.deleted) changed = this.addrs.delete(a.ip) || changed;
        else if (!this.addrs.has(a.ip)) {
          this.addrs.add(a.ip);
          changed = true;
        }
      }
      if (changed) this.options.onChange();
    });
    void child.then((r) => {
      if (this.monitor !== child) return;
      this.monitor = undefined;
      this.fresh = false;
      if (this.stopped) return;
      this.options.log.warn({ exitCode: r.exitCode, signal: r.signal }, 'ip monitor ended; addresses are listed again and it restarts in 1 s');
      this.restart = setTimeout(() => {
        this.startMonitor();
        void this.list();
      }, 1000);
      this.restart.unref();
    });
  }
}
