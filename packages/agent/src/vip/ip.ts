// Service IPs on a real interface: `ip addr add/del` plus gratuitous ARP (`arping -U`), as heartbeat's IPaddr2 did.
// Before taking an address it probes that nobody answers for it (`arping -D`): if someone does, the bind is refused
// and reported loudly; two machines must never serve one address (a split-brain guard).
import { execa } from 'execa';
import { AddressConflictError, assertIp, type Logger } from '@slotctl/shared/base';
import type { VipDriver } from './driver.js';
import { parseAddressLine, type AddressWatch } from './address-watch.js';
import { probeAddress, type ProbeResult } from './probe.js';

/**
 * How long one `ip` command may take before it is killed and reported: a netlink call answers in milliseconds, and
 * one that never ends (a frozen host, a hung kernel call) must not hold whoever waits on it — least of all the fence.
 */
export const IP_COMMAND_TIMEOUT_MS = 5000;

/**
 * `ip ARGS` with a deadline: SIGKILL at it, and an error a second later whether or not the process has gone (one
 * stuck in the kernel, or whose output a descendant holds open, may never be reaped: its caller must not wait on it).
 */
async function runIp(args: string[]): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const command = `ip ${args.join(' ')}`;
  const child = execa('ip', args, { reject: false, timeout: IP_COMMAND_TIMEOUT_MS, killSignal: 'SIGKILL' });
  let timer: NodeJS.Timeout | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${command} did not end within ${IP_COMMAND_TIMEOUT_MS / 1000 + 1} s, even killed; left behind`)), IP_COMMAND_TIMEOUT_MS + 1000);
  });
  try {
    const r = await Promise.race([child, abandoned]);
    if (r.timedOut) throw new Error(`${command} did not finish within ${IP_COMMAND_TIMEOUT_MS / 1000} s (killed); is the host frozen or out of processes?`);
    if (r.signal) throw new Error(`${command} was killed by ${r.signal}`);
    if (r.failed && r.exitCode === undefined) throw new Error(`${command} could not be run: ${r.shortMessage ?? r.message}`);
    return { exitCode: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** A probe that found an address free stands in for the bind's own this long (see VipDriver.probeEarly). */
export const EARLY_PROBE_VALID_MS = 1000;

export interface IpDriverOptions {
  iface: string;
  /** How long arping -D listens for another owner; an owner on the same link answered within 6 ms even on a loaded host (probe.ts). */
  probeMs: number;
  log: Logger;
  /** The agent's live view of the interface (the fence process has none: it asks `ip` each time). */
  watch?: AddressWatch;
}

/** The IPv4 addresses in `ip -o -4 addr show` output ("2: eth0    inet 10.0.0.5/32 scope global eth0 ..."). */
export function parseAddresses(output: string): Set<string> {
  const out = new Set<string>();
  for (const line of output.split('\n')) {
    const a = parseAddressLine(line);
    if (a && !a.deleted) out.add(a.ip);
  }
  return out;
}

export class IpVipDriver implements VipDriver {
  readonly name = 'ip';
  /** Early probes: in flight, and when each last found its address free. */
  private readonly early = new Map<string, Promise<void>>();
  private readonly freeAt = new Map<string, number>();

  constructor(private readonly options: IpDriverOptions) {
    // The interface name reaches a command line: same rule as names from the network.
    if (!/^[A-Za-z0-9._-]{1,15}$/.test(options.iface)) throw new Error(`interface name "${options.iface}" is not valid`);
  }

  async isBound(ip: string): Promise<boolean> {
    assertIp(ip, 'service IP');
    return (await this.listNow()).has(ip);
  }

  /** From the address watch when it is current (no process), else from `ip`. */
  async list(): Promise<ReadonlySet<string>> {
    return this.options.watch?.snapshot() ?? this.listNow();
  }

  /** Always asks `ip`: what bind, unbind and isBound act on. */
  private async listNow(): Promise<ReadonlySet<string>> {
    const args = ['-o', '-4', 'addr', 'show', 'dev', this.options.iface];
    const r = await runIp(args);
    if (r.exitCode !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.exitCode}`}`);
    return parseAddresses(r.stdout);
  }

  /**
   * Bound now? The watch's "not bound" is taken as it is (binding is safe to repeat: the add tolerates an address
   * that is there); its "bound" is confirmed with `ip` — a stale "bound" would skip the bind, and cyrmaster could not
   * listen on the address.
   */
  private async present(ip: string): Promise<boolean> {
    assertIp(ip, 'service IP');
    if (this.options.watch?.snapshot()?.has(ip) === false) return false;
    return this.isBound(ip);
  }

  private probe(ip: string): Promise<ProbeResult> {
    return probeAddress({ iface: this.options.iface, ip, probeMs: this.options.probeMs });
  }

  probeEarly(ip: string): Promise<void> {
    const running = this.early.get(ip);
    if (running) return running;
    const done = this.probe(ip)
      .then((r) => {
        if (r.free) this.freeAt.set(ip, performance.now());
      })
      .catch(() => undefined) // the bind probes again and reports what fails
      .finally(() => this.early.delete(ip));
    this.early.set(ip, done);
    return done;
  }

  async bind(ip: string): Promise<void> {
    if (await this.present(ip)) return;
    await this.early.get(ip);
    const early = this.freeAt.get(ip);
    this.freeAt.delete(ip);
    // nobody may answer for it: listened for probeMs from arping's start (probe.ts), or an early probe moments ago
    if (early === undefined || performance.now() - early > EARLY_PROBE_VALID_MS) {
      const probe = await this.probe(ip);
      // the window counts from arping's start, so a slow start costs time, not safety: worth knowing all the same
      if (probe.spawnMs > 250) this.options.log.warn({ ip, spawnMs: Math.round(probe.spawnMs) }, 'arping took long to start (a loaded host, or its output is buffered: is stdbuf installed?)');
      if (!probe.free) {
        this.options.log.error({ ip, iface: this.options.iface, owner: probe.owner }, `ADDRESS CONFLICT: another host (${probe.owner}) answers for ${ip}; refusing to bind it`);
        throw new AddressConflictError(`${ip} is already answered for by another host (${probe.owner}) on ${this.options.iface}; not binding it`, {
          hint: 'find who holds it (arping -I IFACE IP shows the MAC) before anything serves this store here',
        });
      }
    }
    const add = await runIp(['addr', 'add', `${ip}/32`, 'dev', this.options.iface]);
    // "Address already assigned" (or "File exists"): it was there after all (the watch was a moment behind); bound is what was asked
    if (add.exitCode !== 0 && !/File exists|already assigned/.test(add.stderr)) throw new Error(`ip addr add ${ip}/32 dev ${this.options.iface} failed: ${add.stderr || add.exitCode}`);
    this.options.watch?.note(ip, true);
    // Tell the neighbours at once; the second announcement follows a second later without holding anyone up.
    const announce = execa('arping', ['-U', '-q', '-c', '2', '-I', this.options.iface, ip], { reject: false });
    void announce.then((r) => {
      if (r.exitCode !== 0 && r.exitCode !== 1) this.options.log.warn({ ip, stderr: r.stderr }, 'gratuitous ARP failed');
    });
    this.options.log.info({ ip, iface: this.options.iface }, 'service IP bound and announced');
  }

  /** Always asks the kernel (a stale "not bound" must never leave an address where it must not be). */
  async unbind(ip: string): Promise<void> {
    assertIp(ip, 'service IP');
    const del = await runIp(['addr', 'del', `${ip}/32`, 'dev', this.options.iface]);
    this.options.watch?.note(ip, false);
    // "Address not found" (or "Cannot assign requested address" on older kernels): it was not there
    if (del.exitCode !== 0) {
      if (/Cannot assign requested address|Address not found/.test(del.stderr)) return;
      throw new Error(`ip addr del ${ip}/32 dev ${this.options.iface} failed: ${del.stderr || del.exitCode}`);
    }
    this.options.log.info({ ip, iface: this.options.iface }, 'service IP released');
  }
}
