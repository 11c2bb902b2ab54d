// slot-syslogd: a tiny syslog receiver for hosts without a syslog daemon (this test machine, CI, containers).
// It owns /dev/log and files each line by slot (syslog_prefix slot-NAME) into DIR/NAME.log, so several agents on
// one host share it. glibc's syslog() falls back to a stream socket when a datagram connect is refused, so a unix
// stream listener receives every line, NUL-terminated. Started on demand by an agent; survives agent restarts.
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync, chmodSync, type WriteStream } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { formatLogLine, parseSyslog } from './syslog-format.js';

const MAX_BYTES = 4 * 1024 * 1024;

export interface SyslogdOptions {
  socketPath: string;
  dir: string;
}

export const SYSLOGD_PID_FILE = 'slot-syslogd.pid';

/** True when something listens on the socket (a live syslog daemon). */
export async function socketIsLive(path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  return new Promise((resolve) => {
    const sock = net.connect(path);
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    // EAGAIN: its backlog is full, a daemon too busy to accept yet, not a dead one whose socket may be taken over
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EAGAIN'));
  });
}

export async function runSyslogd({ socketPath, dir }: SyslogdOptions): Promise<net.Server | undefined> {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const files = new Map<string, { stream: WriteStream; bytes: number }>();
  const fileFor = (name: string) => {
    let f = files.get(name);
    if (f && f.bytes > MAX_BYTES) {
      f.stream.end();
      renameSync(join(dir, `${name}.log`), join(dir, `${name}.log.1`));
      f = undefined;
    }
    if (!f) {
      const path = join(dir, `${name}.log`);
      const bytes = existsSync(path) ? statSync(path).size : 0;
      f = { stream: createWriteStream(path, { flags: 'a' }), bytes };
      files.set(name, f);
    }
    return f;
  };
  const server = net.createServer((sock) => {
    let buffered = '';
    sock.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split(/\0|\n/);
      buffered = parts.pop() ?? '';
      for (const raw of parts) {
        if (!raw) continue;
        const line = parseSyslog(raw);
        if (!line) continue;
        const text = `${formatLogLine(line, new Date())}\n`;
        const f = fileFor(line.slot ?? 'other');
        f.stream.write(text);
        f.bytes += Buffer.byteLength(text);
      }
    });
    sock.on('error', () => undefined);
  });
  // Bind first and look second: of two daemons started at once, exactly one binds; the other finds it live and
  // leaves. Only a socket file that nobody answers on is removed and bound again.
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  try {
    await listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    if (await socketIsLive(socketPath)) return undefined; // someone else serves it
    rmSync(socketPath, { force: true }); // a stale socket file from a dead daemon
    await listen();
  }
  chmodSync(socketPath, 0o666);
  writeFileSync(join(dir, SYSLOGD_PID_FILE), `${process.pid}\n`);
  const close = () => {
    server.close();
    rmSync(join(dir, SYSLOGD_PID_FILE), { force: true });
    for (const f of files.values()) f.stream.end();
  };
  process.once('SIGTERM', () => {
    close();
    process.exit(0);
  });
  process.once('SIGINT', () => {
    close();
    process.exit(0);
  });
  return server;
}
