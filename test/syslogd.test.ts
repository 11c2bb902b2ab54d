// slot-syslogd is started by the first agent of a host and shared; when it dies (killed, crashed) the agents start
// it again, or every Cyrus line of the host is lost until an agent restarts. Tested on a private socket and
// directory (the suite's own /dev/log is left alone) with the real slot-syslogd.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { SlotLogs, ensureSyslog, keepSyslog } from '../packages/agent/src/logs/slot-logs.js';
import { SYSLOGD_PID_FILE, socketIsLive } from '../packages/agent/src/logs/syslogd.js';
import { pidAlive } from '../packages/agent/src/slot/process.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('syslogd');
const socket = join(dir, 'dev-log');
const logDir = join(dir, 'slots');
const bin = join(ROOT, 'packages', 'agent', 'bin', 'slot-syslogd.js');
const pidFile = join(logDir, SYSLOGD_PID_FILE);
const daemonPid = () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined);
let stopKeeping: () => void = () => undefined;

afterAll(() => {
  stopKeeping();
  const pid = daemonPid();
  if (pid && pidAlive(pid)) process.kill(pid, 'SIGTERM');
  removeDir(dir);
});

describe('slot-syslogd kept running', () => {
  it('is started again when it dies, and lines reach the slot files again', async () => {
    const log = createLogger('test', { level: 'silent' });
    expect(await ensureSyslog(logDir, socket, bin, log)).toBe('ours');
    const first = daemonPid()!;
    expect(pidAlive(first)).toBe(true);
    stopKeeping = keepSyslog(logDir, socket, bin, log, 200);

    process.kill(first, 'SIGKILL'); // no clean exit: its socket file stays behind, answered by nobody
    const second = await waitFor('another slot-syslogd', () => {
      const pid = daemonPid();
      return pid && pid !== first && pidAlive(pid) ? pid : undefined;
    }, 15_000, 100);
    expect(second).not.toBe(first);

    const logs = new SlotLogs(logDir);
    const marker = `after the restart ${Date.now()}`;
    await execa('logger', ['-u', socket, '-t', 'slot-ks01-m1/imap', '-p', 'mail.notice', marker]);
    const lines = await waitFor('the line in ks01-m1.log', async () => {
      const tail = await logs.tail('ks01-m1', 5);
      return tail.some((l) => l.includes(marker)) ? tail : undefined;
    }, 10_000, 100);
    expect(lines.at(-1)).toMatch(new RegExp(`^\\S+ notice imap: ${marker}$`));
  });

  it('counts a daemon too busy to accept (its backlog full) as live, so nobody takes its socket over', async () => {
    const busy = join(dir, 'busy-log');
    // a listener in a process of its own, stopped: its one-place backlog fills and a connect gets EAGAIN
    const server = execa('node', ['-e', `require('net').createServer().listen({ path: ${JSON.stringify(busy)}, backlog: 1 }, () => console.log('up'))`]);
    try {
      await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
      process.kill(server.pid!, 'SIGSTOP');
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) {
        codes.push(await new Promise<string>((resolve) => {
          const sock = net.connect(busy);
          sock.once('connect', () => resolve('connected'));
          sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
        }));
      }
      expect(codes).toContain('EAGAIN');
      expect(await socketIsLive(busy)).toBe(true);
    } finally {
      process.kill(server.pid!, 'SIGCONT');
      process.kill(server.pid!, 'SIGTERM');
      await server.catch(() => undefined);
    }
  });
});
