// On a production host rsyslog owns /dev/log. The rule in deploy/rsyslog/ makes it write the same per-slot files
// that slot-syslogd writes, so slot-agent reads them the same way. Tested with a real rsyslogd on a private socket
// and directory (the suite's own /dev/log is left alone).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SlotLogs } from '../packages/agent/src/logs/slot-logs.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('rsyslog');
const socket = join(dir, 'dev-log');
const logDir = join(dir, 'slots');
const pidFile = join(dir, 'rsyslogd.pid');

beforeAll(async () => {
  const rule = readFileSync(join(ROOT, 'deploy', 'rsyslog', '30-slotctl.conf.template'), 'utf8').replaceAll('@DIR@', logDir);
  const conf = join(dir, 'rsyslog.conf');
  writeFileSync(
    conf,
    `global(workDirectory="${dir}")\nmodule(load="imuxsock" SysSock.Use="off")\ninput(type="imuxsock" Socket="${socket}" CreatePath="on")\n${rule}\n`,
  );
  await execa('mkdir', ['-p', logDir]);
  await execa('rsyslogd', ['-f', conf, '-i', pidFile]);
  await waitFor('rsyslogd to listen', () => (existsSync(socket) ? true : undefined), 10_000);
});

afterAll(() => {
  if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
  removeDir(dir);
});

describe('slot logs written by rsyslog', () => {
  it('files lines by slot in the format slot-agent reads, and notable lines become events', async () => {
    const logs = new SlotLogs(logDir);
    const notable: string[] = [];
    logs.track('rs01-m1');
    logs.follow((slot, line) => notable.push(`${slot} ${line}`), () => undefined, 100);
    try {
      await execa('logger', ['-u', socket, '-t', 'slot-rs01-m1/lmtp', '-i', '-p', 'mail.info', 'Delivered: <a@b> to mailbox: user.alice']);
      await execa('logger', ['-u', socket, '-t', 'slot-rs01-m1/sync_client', '-p', 'mail.err', 'IOERROR: zero length response']);
      await execa('logger', ['-u', socket, '-t', 'postfix/smtpd', '-p', 'mail.info', 'not a slot']);
      const lines = await waitFor('two lines in rs01-m1.log', async () => {
        const tail = await logs.tail('rs01-m1', 10);
        return tail.length >= 2 ? tail : undefined;
      }, 10_000, 100);
      expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+ info lmtp\[\d+\]: Delivered: <a@b> to mailbox: user\.alice$/);
      expect(lines[1]).toMatch(/^\S+ err sync_client: IOERROR: zero length response$/);
      await waitFor('the notable line', () => (notable.length ? true : undefined), 5000, 50);
      expect(notable).toEqual([expect.stringMatching(/^rs01-m1 .*IOERROR: zero length response$/)]);
      expect(existsSync(join(logDir, 'postfix.log'))).toBe(false);
    } finally {
      logs.stop();
    }
  });
});
