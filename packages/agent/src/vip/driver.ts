// Service IPs follow the master. A driver binds and releases them; the loopback driver is for one host, the ip +
// arping driver for real interfaces.
export interface VipDriver {
  readonly name: string;
  bind(ip: string): Promise<void>;
  unbind(ip: string): Promise<void>;
  isBound(ip: string): Promise<boolean>;
  /** Every IPv4 address on the interface, for reconciliation; undefined when the driver has nothing to reconcile. */
  list(): Promise<ReadonlySet<string> | undefined>;
  /**
   * Probes `ip` now, ahead of a bind that will follow shortly (a replica being promoted probes while it stops): a
   * bind within EARLY_PROBE_VALID_MS of a probe that found the address free does not probe again. Never throws.
   */
  probeEarly?(ip: string): Promise<void>;
}
