import { isIPv4 } from 'node:net';
import { ConfigError } from '@slotctl/shared';
import type { VipDriver } from './driver.js';

/** Addresses in 127.0.0.0/8 are served by the loopback interface without any `ip` call. */
export class LoopbackVipDriver implements VipDriver {
  readonly name = 'loopback';

  private check(ip: string): void {
    if (!isIPv4(ip) || !ip.startsWith('127.')) {
      throw new ConfigError(`service IP ${ip} is not in 127.0.0.0/8; the loopback driver cannot serve it`, {
        hint: 'use loopback addresses in the cluster file, or run the agent with the ip driver',
      });
    }
  }

  async bind(ip: string): Promise<void> {
    this.check(ip);
  }

  async unbind(ip: string): Promise<void> {
    this.check(ip);
  }

  /** 127.0.0.0/8 is always there: nothing to reconcile. */
  async list(): Promise<undefined> {
    return undefined;
  }

  async isBound(ip: string): Promise<boolean> {
    return isIPv4(ip) && ip.startsWith('127.');
  }
}
