import { describe, expect, it, vi } from 'vitest';
import type { PreflightInput } from './checks.js';
import { PreflightGate } from './gate.js';

const input = {} as PreflightInput;

describe('a slot held down by its checks', () => {
  it('is looked at again after 1 s, 2 s, 4 s … at most 10 s, once per due time (checked or not), and let go when they pass', async () => {
    let now = 0;
    const gate = new PreflightGate(() => now);
    const failing = async () => ['a problem', 'another'];
    expect(await gate.check(input, failing)).toEqual({ problem: 'a problem; another', changed: true, cleared: '' });
    expect(gate.blocked).toBe(true);
    expect(gate.takeDue(999)).toBe(false);
    expect(gate.takeDue(1000)).toBe(true);
    expect(gate.takeDue(1999)).toBe(false); // taken: not again within its backoff…
    expect(gate.takeDue(2000)).toBe(true); // …but again after it, though the start never reached the checks
    now = 1000;
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
  });

  it('is looked at again on time when the wall clock steps back (NTP, the soak\'s clock steps): its backoff runs on monotonic time', async () => {
    const gate = new PreflightGate();
    await gate.check(input, async () => ['a problem']);
    // ten minutes back, right after the failed check: a backoff counted on the wall clock would wait them out
    const wall = Date.now();
    vi.spyOn(Date, 'now').mockReturnValue(wall - 600_000);
    try {
      expect(gate.takeDue()).toBe(false); // not due before its first second
      await new Promise((r) => setTimeout(r, 1050));
      expect(gate.takeDue()).toBe(true);
    } finally {
      vi.restoreAllMocks();
    }
  });
});
