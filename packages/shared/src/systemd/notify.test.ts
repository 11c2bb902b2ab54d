import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotifyListener } from '../../../../tools/notify-listener.js';
import { createLogger } from '../log.js';
import { SystemdNotifier, keepAliveInterval } from './notify.js';

function captured() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger('notify-test', { level: 'debug', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { log, lines };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('keepAliveInterval', () => {
  it('is half the watchdog, only for this process and only under a notify socket', () => {
    expect(keepAliveInterval({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '8000000' }, 42)).toBe(4000);
    expect(keepAliveInterval({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '8000000', WATCHDOG_PID: '42' }, 42)).toBe(4000);
    // the watchdog is meant for another process (a parent that exec'd us would have passed it on)
    expect(keepAliveInterval({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: '8000000', WATCHDOG_PID: '41' }, 42)).toBeUndefined();
    expect(keepAliveInterval({ WATCHDOG_USEC: '8000000' }, 42)).toBeUndefined();
    expect(keepAliveInterval({ NOTIFY_SOCKET: '/run/x' }, 42)).toBeUndefined();
    expect(keepAliveInterval({ NOTIFY_SOCKET: '/run/x', WATCHDOG_USEC: 'junk' }, 42)).toBeUndefined();
  });
});

describe('SystemdNotifier', () => {
  let listener: NotifyListener;
  beforeAll(async () => {
    listener = await NotifyListener.start();
  });
  afterAll(() => listener.stop());

  it('does nothing without NOTIFY_SOCKET (not started by systemd)', async () => {
    const { log, lines } = captured();
    // a binary that does not exist: any attempt to run it would be logged as a failure
    const n = new SystemdNotifier({ log, env: { PATH: process.env.PATH, WATCHDOG_USEC: '1000' }, binary: '/nonexistent/systemd-notify' });
    expect(n.enabled).toBe(false);
    await n.ready('serving');
    await n.stopping('bye');
    n.status('x');
    expect(n.keepAlive()).toBe(false);
    await sleep(50);
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('delivers READY with its STATUS, STATUS changes, STOPPING and EXTEND_TIMEOUT_USEC through systemd-notify', async () => {
    const { log, lines } = captured();
    const n = new SystemdNotifier({ log, env: listener.env() });
    await n.ready('serving 3 slots\nsecond line');
    expect(await listener.waitFor('READY=1')).toEqual(['READY=1', 'STATUS=serving 3 slots second line']);
    n.status('serving 3 slots second line'); // unchanged: not sent again
    n.status('serving 4 slots');
    await listener.waitFor('STATUS=serving 4 slots');
    await n.extendTimeout(30_000, 'stopping slot s1');
    await n.stopping('stopping');
    expect(listener.with('EXTEND_TIMEOUT_USEC=30000000')).toEqual([['EXTEND_TIMEOUT_USEC=30000000', 'STATUS=stopping slot s1']]);
    expect(listener.with('STOPPING=1')).toEqual([['STOPPING=1', 'STATUS=stopping']]);
    expect(listener.with('STATUS=serving 3 slots second line')).toHaveLength(1);
    expect(lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it('sends WATCHDOG=1 at most every half watchdog, however often the loop asks', async () => {
    const { log } = captured();
    const n = new SystemdNotifier({ log, env: listener.env({ WATCHDOG_USEC: '400000', WATCHDOG_PID: String(process.pid) }) });
    expect(n.keepAliveMs).toBe(200);
    const before = listener.with('WATCHDOG=1').length;
    const started = Date.now();
    while (Date.now() - started < 1000) {
      n.keepAlive();
      await sleep(10);
    }
    await sleep(100);
    const sent = listener.with('WATCHDOG=1').length - before;
    // 1000 ms at one per 200 ms: 5 (6 at the edges), not the hundred the loop asked for
    expect(sent).toBeGreaterThanOrEqual(4);
    expect(sent).toBeLessThanOrEqual(6);
  });

  it('never runs two keep-alives at once: a slow one makes the next be skipped and logged, not queued', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slotctl-slow-notify-'));
    try {
      const calls = join(dir, 'calls');
      const stub = join(dir, 'systemd-notify');
      // stands in for a systemd-notify whose barrier waits on a busy PID 1
      writeFileSync(stub, `#!/bin/sh\necho "$@" >> '${calls}'\nsleep 0.6\n`);
      chmodSync(stub, 0o755);
      let clock = 0;
      const { log, lines } = captured();
      const n = new SystemdNotifier({ log, env: { PATH: process.env.PATH, NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '200000' }, binary: stub, now: () => clock });
      expect(n.keepAlive()).toBe(true);
      clock += 150;
      expect(n.keepAlive()).toBe(false); // the first still runs
      clock += 150;
      expect(n.keepAlive()).toBe(false);
      await sleep(900);
      clock += 150;
      expect(n.keepAlive()).toBe(true); // the first has returned
      await sleep(900);
      expect(readFileSync(calls, 'utf8').trim().split('\n')).toEqual(['WATCHDOG=1', 'WATCHDOG=1']);
      // said once per keep-alive that holds the next ones up, not at every pass of the loop
      expect(lines.filter((l) => l.msg === 'watchdog keep-alive skipped: the previous systemd-notify has not returned yet')).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
