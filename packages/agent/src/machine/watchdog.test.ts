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
  // a 300 ms watchdog: a keep-alive every 150 ms; the loop passes every 20 ms
  const notifier = new SystemdNotifier({ log, env: listener.env({ WATCHDOG_USEC: '300000' }) });
  const count = () => listener.with('WATCHDOG=1').length;
  slots.startReconciling(20, () => notifier.keepAlive());
  try {
    await sleep(1000);
    const running = count();
    expect(running).toBeGreaterThanOrEqual(4); // ~6 in 1 s

    hang = new Promise<void>((r) => (release = r));
    await sleep(300); // the pass under way ends, its keep-alive (if due) is delivered
    const atHang = count();
    await sleep(1000);
    expect(count()).toBe(atHang); // more than three watchdogs without one: systemd would have restarted the agent

    release();
    await sleep(500);
    expect(count()).toBeGreaterThan(atHang); // the loop came round again
  } finally {
    release();
    await slots.detachAll();
  }
});
