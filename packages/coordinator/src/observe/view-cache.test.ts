// The shared cluster view: computed once for many readers, refreshed in the background while read, never after stop.
import { describe, expect, it } from 'vitest';
import { ViewCache } from './view-cache.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('view cache', () => {
  it('computes once for every reader, refreshes in the background, and stops for good', async () => {
    let computed = 0;
    const cache = new ViewCache(() => ++computed);
    expect(cache.get().view).toBe(1);
    expect(cache.get().view).toBe(1);
    expect(computed).toBe(1);
    // refreshed without a reader asking (at most every second for a cheap view)
    for (let i = 0; i < 50 && computed < 2; i++) await sleep(100);
    expect(computed).toBe(2);
    expect(cache.get().view).toBe(2);
    cache.stop();
    const at = computed;
    await sleep(1500);
    expect(computed).toBe(at);
  });
});
