import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { arpSettings, assertInterfaceName, tuneArpRetransmit } from './neighbour.js';

const log = createLogger('test', { level: 'silent' });

describe('ARP retransmission', () => {
  it('asks more often and as many more times: an address is still given up after ~3 s', () => {
    expect(arpSettings(250)).toEqual({ retrans_time_ms: 250, mcast_solicit: 12 });
    expect(arpSettings(1000)).toEqual({ retrans_time_ms: 1000, mcast_solicit: 3 });
    expect(arpSettings(2000)).toEqual({ retrans_time_ms: 2000, mcast_solicit: 3 });
  });

  it('accepts interface names and refuses what could leave /proc/sys/net/ipv4/neigh', () => {
    for (const ok of ['eth0', 'ens3', 'bond0.100', 'veth-m1']) expect(assertInterfaceName(ok, 'iface')).toBe(ok);
    for (const bad of ['', '..', '.', 'eth0/../../x', 'a b', 'averyveryverylongname0']) expect(() => assertInterfaceName(bad, 'iface')).toThrow(/is not an interface name/);
  });

  it('writes both settings under the interface, and leaves them with 0', () => {
    const root = mkdtempSync(join(tmpdir(), 'slotctl-neigh-'));
    try {
      mkdirSync(join(root, 'eth0'));
      writeFileSync(join(root, 'eth0', 'retrans_time_ms'), '1000\n');
      writeFileSync(join(root, 'eth0', 'mcast_solicit'), '3\n');
      tuneArpRetransmit('eth0', 0, log, root);
      expect(readFileSync(join(root, 'eth0', 'retrans_time_ms'), 'utf8')).toBe('1000\n');
      tuneArpRetransmit('eth0', 250, log, root);
      expect(readFileSync(join(root, 'eth0', 'retrans_time_ms'), 'utf8')).toBe('250\n');
      expect(readFileSync(join(root, 'eth0', 'mcast_solicit'), 'utf8')).toBe('12\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
