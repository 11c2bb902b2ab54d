import { describe, expect, it } from 'vitest';
import { expandPool, firstFree, poolEntryProblem } from './address-pool.js';

describe('address pools', () => {
  it('takes single addresses and IPv4 ranges, in order', () => {
    expect(expandPool(['10.0.1.254-10.0.2.1', 'fd00::5', '10.0.9.9'])).toEqual(['10.0.1.254', '10.0.1.255', '10.0.2.0', '10.0.2.1', 'fd00::5', '10.0.9.9']);
    expect(firstFree(['10.0.1.10-10.0.1.12'], new Set(['10.0.1.10', '10.0.1.11']))).toBe('10.0.1.12');
    expect(firstFree(['10.0.1.10-10.0.1.11'], new Set(['10.0.1.10', '10.0.1.11']))).toBeUndefined();
  });

  it('names what is wrong with an entry', () => {
    expect(poolEntryProblem('10.0.1.10-10.0.1.40')).toBe('');
    expect(poolEntryProblem('fd00::1')).toBe('');
    expect(poolEntryProblem('10.0.1.400')).toMatch(/not an IPv4 or IPv6 address/);
    expect(poolEntryProblem('10.0.1.40-10.0.1.10')).toMatch(/ends before it begins/);
    expect(poolEntryProblem('fd00::1-fd00::9')).toMatch(/not a range of IPv4 addresses/);
    expect(poolEntryProblem('10.0.0.0-10.1.0.0')).toMatch(/more than 4096/);
    expect(poolEntryProblem('10.0.0.1; rm -rf /')).toMatch(/not a range of IPv4 addresses/);
  });
});
