// Service IPs follow the master. A driver binds and releases them; the loopback driver is for one host, the ip +
// arping driver (next issue) for real interfaces.
export interface VipDriver {
  readonly name: string;
  bind(ip: string): Promise<void>;
  unbind(ip: string): Promise<void>;
  isBound(ip: string): Promise<boolean>;
}
