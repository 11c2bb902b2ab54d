import { describe, expect, it } from 'vitest';
import { fenceDue, type FenceFile } from './fence-file.js';

const file = (deadline: number | undefined, masters = 1): FenceFile => ({
  format: 1,
  bootId: 'b',
  agentPid: 1,
  deadline,
  holder: 'coordinator lease',
  masters: Array.from({ length: masters }, (_, i) => ({ slot: `s${i}`, store: `n${i}`, epoch: 1, pidFile: '/x', imapdConf: '/y', serviceIp: '10.0.0.1' })),
  vip: { driver: 'ip', iface: 'eth0' },
});

describe('fenceDue', () => {
  it('acts only when masters are listed and their deadline has passed (or none is known)', () => {
    expect(fenceDue(file(1000), 999)).toBe(false);
    expect(fenceDue(file(1000), 1000)).toBe(true);
    expect(fenceDue(file(undefined), 0)).toBe(true);
    expect(fenceDue(file(1000, 0), 5000)).toBe(false);
    expect(fenceDue(undefined, 5000)).toBe(false);
  });
});
