// ARP retransmission on the agent's interface. After a link flap (a NIC or switch port down for a second or two) the
// kernel has forgotten the coordinator's MAC address and holds every new packet towards it until its next ARP
// request: one a second by default, so the first renewal after the flap waited up to a second more, and a 1.9 s flap
// fenced a machine (measured in two namespaces joined by a bridge: connections opened during a 1.3 s flap got through
// 0.74 s after it ended; with 250 ms, 0.26 s). The number of requests is raised to match, so that an address that
// does not answer is still given up after the same ~3 s and nothing else sees "no route to host" sooner.
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, type Logger } from '@slotctl/shared/base';

/** Linux interface names: at most 15 bytes, no slash or white space (checked before it becomes a /proc path). */
export function assertInterfaceName(iface: string, what: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface) || iface === '.' || iface === '..') {
    throw new ConfigError(`${what} "${iface}" is not an interface name`, { hint: 'name the interface the service IPs go on, as `ip link` shows it (e.g. eth0)' });
  }
  return iface;
}

/** The two settings for `retransmitMs`: how often to ask, and how many times within the kernel's default ~3 s. */
export function arpSettings(retransmitMs: number): { retrans_time_ms: number; mcast_solicit: number } {
  return { retrans_time_ms: retransmitMs, mcast_solicit: Math.max(3, Math.ceil(3000 / retransmitMs)) };
}

/** Applies `arpSettings` to `iface` (0: leaves the kernel's own). A host that refuses is logged, not fatal. */
export function tuneArpRetransmit(iface: string, retransmitMs: number, log: Logger, procRoot = '/proc/sys/net/ipv4/neigh'): void {
  if (retransmitMs <= 0) return;
  assertInterfaceName(iface, '--vip-interface');
  const before: Record<string, number> = {};
  try {
    for (const [key, value] of Object.entries(arpSettings(retransmitMs))) {
      const path = `${procRoot}/${iface}/${key}`;
      before[key] = Number(readFileSync(path, 'utf8').trim());
      writeFileSync(path, `${value}\n`);
    }
    log.info({ iface, before, after: arpSettings(retransmitMs) }, 'ARP requests for an unresolved neighbour repeated faster: a link flap costs no extra second before renewals get through');
  } catch (err) {
    log.warn({ iface, err: (err as Error).message }, 'could not tune ARP retransmission (--arp-retransmit 0 leaves it); after a link flap renewals may wait up to a second more');
  }
}
