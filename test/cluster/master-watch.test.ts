// The split-brain watch samples in a process of its own, at real-time priority when run as root: the test process
// being busy does not blind it, and a gap in its own sampling is reported (a dual master shorter than the gap could
// have passed unseen).
import { createConnection, createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GAP_LIMIT_MS, MasterWatch, listeners } from './master-watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the master watch', () => {
  it('finds a listener among many connections, reading only the listening part of the table', async () => {
    const listen = (host: string) => new Promise<Server>((resolve) => { const s = createServer((c) => c.on('error', () => undefined)); s.listen(0, host, () => resolve(s)); });
    const server = await listen('127.0.0.1');
    const port = (server.address() as { port: number }).port;
    // connections to it come after every listener in /proc/net/tcp, and their local side is the same port
    const clients = await Promise.all(Array.from({ length: 40 }, () => new Promise<ReturnType<typeof createConnection>>((resolve) => { const c = createConnection(port, '127.0.0.1', () => resolve(c)); })));
    try {
      expect(listeners(process.pid, port)).toEqual(['127.0.0.1']);
      expect(listeners(2 ** 22 + 1, port)).toEqual([]); // no such process
    } finally {
      for (const c of clients) c.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('keeps sampling while the test process blocks its own event loop', async () => {
    const watch = new MasterWatch(new Map([['m1', 'slotctl-no-such-namespace']]), new Set(['10.231.3.1']));
    await watch.start();
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // busy: no timer of the test process runs
    }
    await sleep(100);
    const result = await watch.stop();
    expect(result.samples).toBeGreaterThan(15);
    expect(result.gaps).toEqual([]);
    expect(result.longestGapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(await watch.stop()).toBe(result); // stopping twice answers the same
    if (process.getuid?.() === 0) expect(result.priority).toBe('SCHED_RR 1');
  });

  it('reports a gap in its own sampling', async () => {
    const watch = new MasterWatch(new Map([['m1', 'slotctl-no-such-namespace']]), new Set(['10.231.3.1']));
    await watch.start();
    watch.stallForTest(120);
    await sleep(300);
    const result = await watch.stop();
    expect(result.gaps.length).toBe(1);
    expect(result.gaps[0]!.ms).toBeGreaterThanOrEqual(120);
    expect(result.longestGapMs).toBe(result.gaps[0]!.ms);
  });
});
