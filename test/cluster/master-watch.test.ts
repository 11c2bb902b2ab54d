// The split-brain watch samples in a process of its own, at real-time priority when run as root: the test process
// being busy does not blind it, and a gap in its own sampling is reported (a dual master shorter than the gap could
// have passed unseen).
import { readFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GAP_LIMIT_MS, MasterWatch, blindSpots, listeners, resumedTogether, stealMs, stolenAtLeast, stoodStill } from './master-watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the master watch', () => {
  it('counts a moment blind only when every sampler was in a gap then', () => {
    const gap = (from: number, to: number) => ({ at: 0, ms: to - from, from, to });
    // A blind 1000–1100, B blind 1040–1200: both only 1040–1100 (60 ms, over the limit)
    expect(blindSpots([[gap(1000, 1100)], [gap(1040, 1200)]]).map((g) => [g.from, g.to, g.ms])).toEqual([[1040, 1100, 60]]);
    // overlapping by 30 ms only: watched by one of them the rest of the time
    expect(blindSpots([[gap(1000, 1100)], [gap(1070, 1200)]])).toEqual([]);
    // apart: nothing
    expect(blindSpots([[gap(1000, 1100)], [gap(2000, 2100)]])).toEqual([]);
    // one sampler alone: its own gaps
    expect(blindSpots([[gap(1000, 1100)]]).map((g) => g.ms)).toEqual([100]);
  });

  it('tells a machine that stood still from samplers that were held up', () => {
    // as seen on a CI machine: each CPU's sampler slept past its timer for ~370 ms, neither waiting nor running
    const gap = (from: number, split: { sleptMs: number; waitMs: number; cpuMs: number; readMs: number }) => ({ at: 0, ms: 383, from, to: from + 383, ...split });
    const idle = { sleptMs: 9, waitMs: 1, cpuMs: 2, readMs: 2 };
    const [still] = blindSpots([[gap(1000, idle)], [gap(994, idle)]]);
    expect(still!.ms).toBe(377);
    expect(still!.couldRunMs).toBe(28);
    expect(stoodStill(still!)).toBe(true);
    // one CPU taken by others the whole time (its sampler runnable, waiting): that CPU ran the cluster, blind
    const [starved] = blindSpots([[gap(1000, { ...idle, waitMs: 360 })], [gap(994, idle)]]);
    expect(stoodStill(starved!)).toBe(false);
    // a sampler busy in its own reads: blind
    expect(stoodStill(blindSpots([[gap(1000, { ...idle, cpuMs: 200, readMs: 200 })], [gap(994, idle)]])[0]!)).toBe(false);
    // the stall covers only part of each gap: 2 × 40 ms in which a CPU ran, over the limit
    expect(stoodStill(blindSpots([[gap(1000, { ...idle, sleptMs: 37 })], [gap(994, { ...idle, sleptMs: 37 })]])[0]!)).toBe(false);
    // without the scheduler's split it cannot be told: blind
    expect(stoodStill(blindSpots([[{ at: 0, ms: 383, from: 1000, to: 1383 }], [gap(994, idle)]])[0]!)).toBe(false);
  });

  it('tells a stall its hypervisor took from a sampler held up in its runnable wait', () => {
    // one sampler overslept 41 ms, the other was made runnable just before its virtual CPU was descheduled, so its
    // 44 ms stall reads as waiting; their gaps end 3 ms apart (not together: see the next test)
    const one = { at: 0, ms: 53, from: 1002.3, to: 1055.4, sleptMs: 9, waitMs: 0, cpuMs: 2, readMs: 1 };
    const two = { at: 0, ms: 58, from: 1000, to: 1058.4, sleptMs: 10, waitMs: 44, cpuMs: 1, readMs: 1 };
    const [blind] = blindSpots([[one], [two]]);
    expect(blind!.couldRunMs).toBe(53);
    expect(stoodStill(blind!)).toBe(false);
    // with /proc/stat's steal figure moving by 40 ms over the second gap (the least a 44 ms steal can show): 20 ms
    // certainly stolen, so that CPU can have run 38 ms, the other 12
    const [still] = blindSpots([[one], [{ ...two, stolenMs: stolenAtLeast(1230, 1270) }]]);
    expect(still!.couldRunMs).toBe(50);
    expect(stoodStill(still!)).toBe(true);
    // a figure that moved by one step or two proves nothing
    expect(stolenAtLeast(1230, 1240)).toBe(0);
    expect(stolenAtLeast(1230, 1250)).toBe(0);
    expect(stoodStill(blindSpots([[one], [{ ...two, stolenMs: stolenAtLeast(1230, 1250) }]])[0]!)).toBe(false);
  });

  it('does not count as running the waits of samplers that got their CPUs back at one moment', () => {
    // as seen on CI twice: one sampler waited 40–44 ms runnable with nothing stolen, the other overslept, and both gaps
    // ended within a millisecond (0.09 and 0.4 ms apart): the virtual machine resuming, not two workloads ending
    const a = { at: 0, ms: 55, from: 1027.7, to: 1082.9, sleptMs: 9, waitMs: 40, cpuMs: 2, readMs: 2, stolenMs: 0 };
    const b = { at: 0, ms: 82, from: 1000.4, to: 1082.5, sleptMs: 9, waitMs: 0, cpuMs: 1, readMs: 1, stolenMs: 10 };
    const [still] = blindSpots([[a], [b]]);
    expect(still!.resumedTogether).toBe(true);
    expect(still!.couldRunMs).toBe(24);
    expect(stoodStill(still!)).toBe(true);
    expect(resumedTogether([a, b])).toBe(true);
    // the same waits ending 5 ms apart: each CPU held on its own, by anything — blind
    const apart = blindSpots([[a], [{ ...b, to: 1087.9, ms: 87 }]])[0]!;
    expect(apart.resumedTogether).toBeUndefined();
    expect(stoodStill(apart)).toBe(false);
    // together, but a CPU free for the cluster most of the spot (planned sleep): blind
    expect(stoodStill(blindSpots([[{ ...a, sleptMs: 45 }], [b]])[0]!)).toBe(false);
    // one sampler alone proves nothing about the other CPU
    expect(resumedTogether([a])).toBe(false);
  });

  it('reads a CPU\'s steal figure from /proc/stat', () => {
    const stat = 'cpu  1358907 51 335498 459752 3655 0 10408 21647 0 0\ncpu0 677749 18 163916 239131 1088 0 2503 10270 0 0\ncpu1 681158 32 171582 220621 2566 0 7905 11376 0 0\nintr 1 2\n';
    expect(stealMs(stat, 0)).toBe(102_700);
    expect(stealMs(stat, 1)).toBe(113_760);
    expect(stealMs(stat, 2)).toBeUndefined();
    expect(stealMs('cpu0 1 2 3\n', 0)).toBeUndefined(); // a kernel without the column
    expect(stealMs(readFileSync('/proc/stat', 'utf8'), 0)).toBeGreaterThanOrEqual(0);
  });

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
    if (process.getuid?.() === 0) expect(result.priority).toMatch(/SCHED_RR 1/);
    if (process.getuid?.() === 0) expect(result.priority).not.toMatch(/normal/);
  });

  it('reports a blind spot when every sampler is held up at once, with where the time went', async () => {
    const watch = new MasterWatch(new Map([['m1', 'slotctl-no-such-namespace']]), new Set(['10.231.3.1']));
    await watch.start();
    const stall = watch.stallForTest(100, 150);
    await sleep(400);
    const result = await watch.stop();
    // the blind spot over the stall (the samplers start it within a few ms of each other: the overlap is a little shorter)
    const spot = result.gaps.find((g) => g.from! < stall.to && g.to! > stall.from);
    expect(spot, JSON.stringify(result.gaps)).toBeDefined();
    expect(spot!.ms).toBeGreaterThanOrEqual(100);
    expect(result.longestGapMs).toBeGreaterThanOrEqual(spot!.ms);
    // held up by its own busy loop: each sampler's gap was spent running, not waiting for its CPU
    expect(spot!.samplers!.length).toBe(result.priority.startsWith('2 ') ? 2 : 1);
    for (const g of spot!.samplers!) if (g.cpuMs !== undefined) expect(g.cpuMs, JSON.stringify(g)).toBeGreaterThanOrEqual(100);
    // pinned samplers read their CPU's steal figure (this kernel has one: see the /proc/stat test)
    if (spot!.samplers!.length === 2) for (const g of spot!.samplers!) expect(g.stolenMs, JSON.stringify(g)).toBeTypeOf('number');
    // and so the machine did not stand still: the spot counts as blind
    expect(result.stills ?? []).toEqual([]);
  });

  it('reports a stretch in which no sampler could run as the machine standing still, not as blind', async () => {
    const watch = new MasterWatch(new Map([['m1', 'slotctl-no-such-namespace']]), new Set(['10.231.3.1']));
    await watch.start();
    await sleep(100);
    const frozen = await watch.freezeForTest(300);
    await sleep(100);
    const result = await watch.stop();
    expect(result.gaps, JSON.stringify(result.gaps)).toEqual([]);
    const still = result.stills?.find((g) => g.from! < frozen.to && g.to! > frozen.from);
    expect(still, JSON.stringify(result.stills)).toBeDefined();
    expect(still!.ms).toBeGreaterThanOrEqual(250);
    expect(still!.couldRunMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(result.longestGapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
  });
});
