import { describe, expect, it } from 'vitest';
import { LogThrottle } from './throttle.js';

describe('LogThrottle', () => {
  it('lets one line per key through per interval, and remembers a bounded number of keys', () => {
    const t = new LogThrottle(1000, 2);
    expect(t.allow('m9', 0)).toBe(true);
    expect(t.allow('m9', 500)).toBe(false);
    expect(t.allow('m9', 1000)).toBe(true);
    expect(t.allow('a', 1000)).toBe(true);
    expect(t.allow('b', 1000)).toBe(true); // m9 forgotten
    expect(t.allow('m9', 1001)).toBe(true);
  });
});
