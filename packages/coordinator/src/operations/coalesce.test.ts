import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Coalescer, type CoalesceClock } from './coalesce.js';

const clock: CoalesceClock = { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout) };

describe('Coalescer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs a lone request on the next turn', () => {
    const run = vi.fn();
    const c = new Coalescer(run, 25, clock);
    c.request();
    expect(run).not.toHaveBeenCalled();
    vi.advanceTimersByTime(0);
    expect(run).toHaveBeenCalledTimes(1);
  });

  it('folds a burst into one run per gap', () => {
    const run = vi.fn();
    const c = new Coalescer(run, 25, clock);
    for (let t = 0; t < 100; t++) {
      for (let i = 0; i < 10; i++) c.request(); // 10 reports every ms for 100 ms
      vi.advanceTimersByTime(1);
    }
    vi.advanceTimersByTime(100);
    // 1,000 requests: the first at once, then one per 25 ms, and one for the tail
    expect(run.mock.calls.length).toBeGreaterThanOrEqual(4);
    expect(run.mock.calls.length).toBeLessThanOrEqual(6);
  });

  it('never leaves a request unserved: one that arrives during a run gets a run after it', () => {
    const c: Coalescer = new Coalescer(() => {
      if (c.runs === 1) c.request();
    }, 25, clock);
    c.request();
    vi.advanceTimersByTime(0);
    expect(c.runs).toBe(1);
    vi.advanceTimersByTime(24);
    expect(c.runs).toBe(1);
    vi.advanceTimersByTime(1);
    expect(c.runs).toBe(2);
  });

  it('runs nothing after cancel', () => {
    const run = vi.fn();
    const c = new Coalescer(run, 25, clock);
    c.request();
    c.cancel();
    vi.advanceTimersByTime(100);
    expect(run).not.toHaveBeenCalled();
  });
});
