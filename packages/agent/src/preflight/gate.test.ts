import { describe, expect, it, vi } from 'vitest';
import type { PreflightInput } from './checks.js';
import { PreflightGate } from './gate.js';

const input = {} as PreflightInput;

describe('a slot held down by its checks', () => {
  it('is looked at again after 1 s, 2 s, 4 s … at most 10 s, once per due time (checked or not), and let go when they pass', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const gate = new PreflightGate();
      const failing = async () => ['a problem', 'another'];
      expect(await gate.check(input, failing)).toEqual({ problem: 'a problem; another', changed: true, cleared: '' });
      expect(gate.blocked).toBe(true);
      expect(gate.takeDue(999)).toBe(false);
      expect(gate.takeDue(1000)).toBe(true);
      expect(gate.takeDue(1999)).toBe(false); // taken: not again within its backoff…
      expect(gate.takeDue(2000)).toBe(true); // …but again after it, though the start never reached the checks
      vi.setSystemTime(1000);
      expect((await gate.check(input, failing)).changed).toBe(false);
      expect(gate.takeDue(2999)).toBe(false);
      expect(gate.takeDue(3000)).toBe(true);
      for (let i = 0; i < 6; i++) await gate.check(input, failing);
      expect(gate.takeDue(1000 + 10_000)).toBe(true);
      expect(await gate.check(input, async () => [])).toEqual({ problem: '', changed: true, cleared: 'a problem; another' });
      expect(gate.blocked).toBe(false);
      expect(gate.takeDue(Number.MAX_SAFE_INTEGER)).toBe(false);
      // a check that throws holds the slot down with what went wrong
      expect((await gate.check(input, async () => Promise.reject(new Error('EIO')))).problem).toBe('the checks before start failed: EIO');
    } finally {
      vi.useRealTimers();
    }
  });
});
