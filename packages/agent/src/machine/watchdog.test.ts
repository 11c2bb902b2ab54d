// The systemd watchdog's keep-alive rides on the agent's supervision loop (MachineSlots' reconcile pass): while the
// loop goes round WATCHDOG=1 reaches the notify socket at half the watchdog; when a pass hangs, they stop — which is
// what makes systemd restart a hung agent. Real systemd-notify, a python3 stand-in for PID 1's socket.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLogger, SystemdNotifier } from '@slotctl/shared';
import { NotifyListener } from '../../../../tools/notify-listener.js';
import { UnloggedStore } from '../sync/unlogged.js';
import { ReplayStore } from '../state/replay-store.js';
import type { VipDriver } from '../vip/driver.js';
import { MachineSlots } from './slots.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let listener: NotifyListener;
let dir: string;
beforeAll(async () => {
  listener = await NotifyListener.start();
  dir = mkdtempSync(join(tmpdir(), 'slotctl-watchdog-'));
});
afterAll(() => {
  listener.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('keep-alives arrive while the supervision loop goes round and stop when a pass hangs', async () => {
  const log = createLogger('watchdog-test', { level: 'silent' });
  // the interface listing every pass starts with; `hang` makes the next one never return (a stuck `ip`, a lock)
  let hang: Promise<void> | undefined;
  let release = () => undefined as void;
  const vip: VipDriver = {
    name: 'test',
    bind: async () => undefined,
    unbind: async () => undefined,
    isBound: async () => false,
    list: async () => {
      await hang;
      return new Set<string>();
    },
  };
  const slots = new MachineSlots({
    runtime: { ports: { imap: 1143, lmtp: 2003, sync: 2005 }, auth: { mode: 'test', syncUser: 'admin', syncPassword: 'x' }, vip, mayServeMaster: () => false, disks: () => [], crashLimit: 5, crashWindowMs: 60_000, stopTimeoutMs: 1000, readyTimeoutMs: 1000 },
    logs: undefined,
    log,
    onChange: () => undefined,
    onEvent: () => undefined,
    recentLogLines: 0,
    stallAfterMs: 30_000,
    replays: new ReplayStore(dir),
    unlogged: new UnloggedStore(dir),
    publishMasters: async () => true,
    targetGuids: async () => [],
    targetUserSync: async () => undefined,
    diskReportIntervalMs: 300_000,
  });
  // a 300 ms watchdog: a keep-alive every 150 ms; the loop passes every 20 ms. Judged by what was sent and what
  // arrived, not by how many fit in a second: on a busy host a systemd-notify can take longer than the interval
  const notifier = new SystemdNotifier({ log, env: listener.env({ WATCHDOG_USEC: '300000' }) });
  const count = () => listener.with('WATCHDOG=1').length;
  let started = 0;
  slots.startReconciling(20, () => {
    if (notifier.keepAlive()) started++;
  });
  const until = async (what: string, ok: () => boolean, ms = 15_000) => {
    const t = performance.now();
    while (!ok()) {
      if (performance.now() - t > ms) throw new Error(`${what}: not within ${ms} ms (started ${started}, arrived ${count()})`);
      await sleep(20);
    }
  };
  try {
    await until('keep-alives arriving while the loop goes round', () => count() >= 4);

    hang = new Promise<void>((r) => (release = r));
    // the pass under way ends (its keep-alive, if due, is started); then nothing starts any more, and once those
    // started have arrived, none arrives for longer than three watchdogs
    let last = started;
    let quietSince = performance.now();
    await until('the loop stopped starting keep-alives', () => {
      if (started !== last) [last, quietSince] = [started, performance.now()];
      return performance.now() - quietSince > 500;
    });
    // what was started has arrived or given up (a systemd-notify is killed after the interval): arrivals stop
    let arrived = count();
    let stillSince = performance.now();
    await until('arrivals to stop', () => {
      if (count() !== arrived) [arrived, stillSince] = [count(), performance.now()];
      return performance.now() - stillSince > 500;
    });
    const atHang = count();
    await sleep(1000);
    expect(started, 'a keep-alive started while the pass hung').toBe(last);
    expect(count()).toBe(atHang); // more than three watchdogs without one: systemd would have restarted the agent

    release();
    await until('the loop came round again', () => count() > atHang);
  } finally {
    release();
    await slots.detachAll();
  }
});
