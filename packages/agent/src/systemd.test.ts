import { describe, expect, it } from 'vitest';
import { stopPhases } from './machine/ordered-stop.js';
import { chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STOP_REQUEST_FILE, slotsAtStop, stopRequested, takeSystemdEnv, underSystemd } from './systemd.js';

describe('slotsAtStop: do the slots stop with the agent?', () => {
  const cases: Array<[string, Parameters<typeof slotsAtStop>[0], boolean]> = [
    ['--stop-slots-on-exit, always', { stopSlotsOnExit: true, underSystemd: false, systemState: undefined }, true],
    ['system shutting down (systemctl is-system-running: stopping)', { stopSlotsOnExit: false, underSystemd: true, systemState: 'stopping' }, true],
    ['systemctl stop/restart on a running system (a package upgrade)', { stopSlotsOnExit: false, underSystemd: true, systemState: 'running' }, false],
    ['… on a degraded one', { stopSlotsOnExit: false, underSystemd: true, systemState: 'degraded' }, false],
    ['systemctl gave no answer', { stopSlotsOnExit: false, underSystemd: true, systemState: undefined }, false],
    ['the package is being removed (prerm wrote the request file)', { stopSlotsOnExit: false, stopRequested: true, underSystemd: true, systemState: 'running' }, true],
    ['not under systemd (a shell, the test harness), whatever the host does', { stopSlotsOnExit: false, underSystemd: false, systemState: 'stopping' }, false],
  ];
  for (const [what, input, stop] of cases) {
    it(what, () => {
      const d = slotsAtStop(input);
      expect(d.stopSlots).toBe(stop);
      expect(d.why).not.toBe('');
    });
  }

  it('takes a stop request only from a regular file root owns, not a link or another user\'s file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stop-request-'));
    try {
      expect(stopRequested(dir)).toBe(false);
      symlinkSync('/etc/hostname', join(dir, STOP_REQUEST_FILE));
      expect(stopRequested(dir)).toBe(false);
      rmSync(join(dir, STOP_REQUEST_FILE));
      writeFileSync(join(dir, STOP_REQUEST_FILE), '');
      expect(stopRequested(dir)).toBe(process.getuid?.() === 0);
      if (process.getuid?.() === 0) {
        chownSync(join(dir, STOP_REQUEST_FILE), 65534, 65534);
        expect(stopRequested(dir)).toBe(false);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes systemd\'s variables out of the environment the Cyrus programs inherit, for the notifier alone', () => {
    const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', HOME: '/root', NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '8000000', WATCHDOG_PID: '42', INVOCATION_ID: 'abc' };
    const taken = takeSystemdEnv(env);
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root' });
    expect(taken).toEqual({ PATH: '/usr/bin', NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '8000000', WATCHDOG_PID: '42', INVOCATION_ID: 'abc' });
    expect(underSystemd(taken)).toBe(true);
  });

  it('knows systemd by INVOCATION_ID or NOTIFY_SOCKET', () => {
    expect(underSystemd({ INVOCATION_ID: 'abc' })).toBe(true);
    expect(underSystemd({ NOTIFY_SOCKET: '/run/systemd/notify' })).toBe(true);
    expect(underSystemd({ PATH: '/usr/bin' })).toBe(false);
  });
});

describe('stopPhases', () => {
  it('stops masters first (then flushed to their replicas), replicas and slots without a role last', () => {
    expect(stopPhases([
      { name: 'r1', role: 'REPLICA' },
      { name: 'm1', role: 'MASTER' },
      { name: 'x', role: undefined },
      { name: 'm2', role: 'MASTER' },
    ])).toEqual({ masters: ['m1', 'm2'], others: ['r1', 'x'] });
  });
});
