// The split-brain watch reads the kernel's record of listeners starting and ending: its replay is tested on records
// written out here, and the whole watch against real listeners in namespaces this test makes (a hand-over is no dual
// master; two listeners for 30 ms are; a record the ring buffer could not hold says so).
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ListenEvent, MasterWatch, listenersIn, parseTrace, replay } from './master-watch.js';
import { NETNS_PREFIX } from './netns-cleanup.js';
import { RogueListener } from './rogue-listener.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const IP = '10.231.250.1';
const ips = new Set([IP, '10.231.250.2']);

describe('the master watch\'s record', () => {
  it('reads listener starts and ends on the port from the trace, and what it lost', () => {
    const trace = [
      '# tracer: nop',
      '# entries-in-buffer/entries-written: 5/5   #P:2',
      '            node-2148    [001] ..... 22367.747500: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=2003 dport=0 saddr=10.231.250.1 daddr=0.0.0.0 saddrv6=::ffff:10.231.250.1 daddrv6=::ffff:0.0.0.0 oldstate=TCP_CLOSE newstate=TCP_LISTEN',
      // a connection accepted from the listener leaves LISTEN as its child: not the listener ending
      '     cyr-master-7    [000] ..s2. 22368.076528: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=2003 dport=44356 saddr=10.231.250.1 daddr=10.231.9.9 saddrv6=::ffff:10.231.250.1 daddrv6=::ffff:10.231.9.9 oldstate=TCP_LISTEN newstate=TCP_SYN_RECV',
      '            node-2155    [000] ..... 22368.074381: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=2004 dport=0 saddr=127.0.0.1 daddr=0.0.0.0 saddrv6=::ffff:127.0.0.1 daddrv6=::ffff:0.0.0.0 oldstate=TCP_CLOSE newstate=TCP_LISTEN',
      '     cyr-master-7    [001] ..... 22368.949355: inet_sock_set_state: family=AF_INET protocol=IPPROTO_TCP sport=2003 dport=0 saddr=10.231.250.1 daddr=0.0.0.0 saddrv6=::ffff:10.231.250.1 daddrv6=::ffff:0.0.0.0 oldstate=TCP_LISTEN newstate=TCP_CLOSE',
      'CPU:1 [LOST 12 EVENTS]',
    ].join('\n');
    const { events, lost } = parseTrace(trace, 2003);
    expect(events).toEqual([
      { at: 22367747.5, ip: IP, listen: true, pid: 2148, task: 'node' },
      { at: 22368949.355, ip: IP, listen: false, pid: 7, task: 'cyr-master' },
    ]);
    expect(lost).toBe(12);
    expect(parseTrace('# entries-in-buffer/entries-written: 3/10   #P:2\n', 2003).lost).toBe(7);
  });

  it('reads the listening sockets of a /proc/net/tcp table', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 01FAE70A:07D3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:07D3 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0',
      '   2: 01FAE70A:07D4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0',
      '   3: 01FAE70A:07D3 0909E70A:AD44 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect(listenersIn(table, 2003)).toEqual([IP, '127.0.0.1']);
  });

  const ev = (at: number, listen: boolean, pid: number, ip = IP): ListenEvent => ({ at, ip, listen, pid, task: 'master' });
  const byPid = (e: ListenEvent) => `m${e.pid}`;

  it('finds no dual master in a hand-over, however close, and one in any overlap', () => {
    const start = new Map([[IP, ['m1']]]);
    // m1 read at the start closes at 100, m2 listens 0.2 ms later: one master at a time
    const handOver = replay(start, [ev(100, false, 1), ev(100.2, true, 2)], 0, 1000, ips, byPid);
    expect(handOver.dual).toEqual([]);
    expect(handOver.changes).toBe(2);
    expect(handOver.listening[IP]).toBeCloseTo(0.9998, 4);
    expect(handOver.listening['10.231.250.2']).toBe(0);
    expect(handOver.inconsistent).toEqual([]);
    // m2 listens 0.3 ms before m1 closes: a dual master of 0.3 ms
    const overlap = replay(start, [ev(100, true, 2), ev(100.3, false, 1)], 0, 1000, ips, byPid);
    expect(overlap.dual).toEqual([{ at: 100, ip: IP, ms: 0.3, machines: ['m1', 'm2'] }]);
    // still two at the end: up to the end
    expect(replay(start, [ev(900, true, 2)], 0, 1000, ips, byPid).dual).toEqual([{ at: 900, ip: IP, ms: 100, machines: ['m1', 'm2'] }]);
    // two read at the start: from the start
    expect(replay(new Map([[IP, ['m1', 'm3']]]), [ev(10, false, 5)], 0, 1000, ips, byPid).dual).toEqual([{ at: 0, ip: IP, ms: 10, machines: ['m1', 'm3'] }]);
    // events before the start are in the reading; after the stop, not watched
    expect(replay(start, [ev(-5, true, 2), ev(1001, true, 3)], 0, 1000, ips, byPid).dual).toEqual([]);
  });

  it('says when a listener ends that it never saw start', () => {
    const r = replay(new Map(), [ev(10, false, 1)], 0, 1000, ips, byPid);
    expect(r.inconsistent).toHaveLength(1);
    expect(r.inconsistent[0]).toContain(IP);
  });
});

// The real kernel: namespaces of this test's own, listeners in them
describe('the master watch on real listeners', () => {
  const [a, b] = ['a', 'b'].map((n) => `${NETNS_PREFIX}w${process.pid}-${n}`) as [string, string];
  const namespaces = new Map([['a', a], ['b', b]]);
  const listeners: RogueListener[] = [];
  const listener = async (ns: string): Promise<RogueListener> => {
    const l = await RogueListener.start(ns, IP, 2003);
    listeners.push(l);
    return l;
  };

  beforeAll(async () => {
    for (const ns of [a, b]) {
      await execa('ip', ['netns', 'add', ns]);
      await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await execa('ip', ['-n', a, 'addr', 'add', `${IP}/32`, 'dev', 'lo']);
  });
  afterAll(async () => {
    for (const l of listeners) await l.stop();
    for (const ns of [a, b]) await execa('ip', ['netns', 'del', ns], { reject: false });
  });

  it('sees a hand-over as none and 30 ms of two listeners as a dual master, whatever the test process does', async () => {
    const [onA, onB] = [await listener(a), await listener(b)];
    await onA.do('listen');
    const watch = new MasterWatch(namespaces, ips);
    await watch.start();
    await onA.do('close');
    await onB.do('listen');
    // the test process blocked for 300 ms: nothing of the watch runs in it, or needs to
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // busy
    }
    await onA.do('listen');
    const surely = performance.now();
    await sleep(30);
    const held = performance.now() - surely;
    await onA.do('close');
    await sleep(50);
    const result = await watch.stop();
    expect(await watch.stop()).toBe(result); // stopping twice answers the same
    expect(result.lost).toBe(0);
    expect(result.inconsistent).toEqual([]);
    expect(result.changes).toBe(4);
    expect(result.dual).toHaveLength(1);
    expect(result.dual[0]!.ip).toBe(IP);
    expect(result.dual[0]!.machines).toEqual(['b', 'a']);
    expect(result.dual[0]!.ms).toBeGreaterThanOrEqual(held);
    expect(result.listening[IP]).toBeGreaterThan(0.5);
  });

  it('says how many events it lost when its ring buffer could not hold them', async () => {
    const onA = await listener(a);
    const watch = new MasterWatch(namespaces, ips, 2003, 4);
    await watch.start();
    await onA.do('cycle 3000');
    const result = await watch.stop();
    expect(result.lost).toBeGreaterThan(0);
  });

  it('refuses to be stopped before it was started', async () => {
    await expect(new MasterWatch(namespaces, ips).stop()).rejects.toThrow(/never started/);
  });
});
