import net from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { listenAddresses, portProblems, waitPortsFree } from './ports.js';

const listen = async (host: string, port = 0): Promise<net.Server> => {
  const server = net.createServer(() => undefined);
  await new Promise<void>((r) => server.listen({ host, port, exclusive: true }, r));
  return server;
};
const portOf = (s: net.Server) => (s.address() as net.AddressInfo).port;
/** Each check reads a fresh snapshot of /proc/net/tcp (a shared one lives 500 ms). */
const fresh = () => new Promise((r) => setTimeout(r, 550));

/** A listener in a process of its own (killed by its PID afterwards), optionally under another program name. */
async function listenerProcess(host: string, argv0?: string): Promise<{ child: ResultPromise; port: number }> {
  const code = `const s=require('net').createServer();s.listen(0,${JSON.stringify(host)},()=>console.log(s.address().port))`;
  const child = execa(process.execPath, ['-e', code], { argv0, reject: false });
  const port = await new Promise<number>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  return { child, port };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('the addresses a slot listens on', () => {
  it("are every listen= of its cyrus.conf, IPv4 and bracketed IPv6, once each", () => {
    const conf = [
      'SERVICES {',
      '  imap cmd="imapd -C /m/etc/imapd.conf" listen="127.0.5.5:1143" prefork=0',
      '  imapsvc cmd="imapd -C /m/etc/imapd.conf" listen="127.0.6.1:1143" prefork=0',
      '  lmtp cmd="lmtpd -C /m/etc/imapd.conf -a" listen="127.0.6.1:2003" prefork=0',
      '  syncserver cmd="sync_server -C /m/etc/imapd.conf" listen="[fd00::5]:2005" prefork=0',
      '  again cmd="imapd" listen="127.0.5.5:1143"',
      '}',
    ].join('\n');
    expect(listenAddresses(conf)).toEqual([
      { ip: '127.0.5.5', port: 1143 },
      { ip: '127.0.6.1', port: 1143 },
      { ip: '127.0.6.1', port: 2003 },
      { ip: 'fd00::5', port: 2005 },
    ]);
  });
});

describe('ports already taken', () => {
  it('are free when nothing listens there, the same port on another address included', async () => {
    const other = await listen('127.0.59.2');
    cleanups.push(() => other.close());
    await fresh();
    expect(await portProblems([{ ip: '127.0.59.3', port: portOf(other) }], undefined)).toEqual([]);
  });

  it('are free once their holder has exited, even within the 500 ms a shared read of /proc/net/tcp lives', async () => {
    const { child, port } = await listenerProcess('127.0.59.9');
    cleanups.push(() => child.kill('SIGKILL'));
    await fresh();
    expect(await portProblems([{ ip: '127.0.59.9', port }], undefined)).toHaveLength(1); // the shared read: held
    child.kill('SIGKILL');
    await child;
    // a read this old would still show the listener, with nobody holding it: read again before calling it taken
    expect(await portProblems([{ ip: '127.0.59.9', port }], undefined)).toEqual([]);
  });

  it('name the process that listens there, with its PID and command line', async () => {
    const { child, port } = await listenerProcess('127.0.59.4');
    cleanups.push(() => child.kill('SIGKILL'));
    await fresh();
    const problems = await portProblems([{ ip: '127.0.59.4', port }], undefined);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^127\\.0\\.59\\.4:${port} is taken by pid ${child.pid} \\(${process.execPath.replaceAll('/', '\\/')} -e .*\\): stop that program, or give the slots other ports`));
  });

  it('count a listener on every address of the port, and say so', async () => {
    const any = await listen('0.0.0.0');
    cleanups.push(() => any.close());
    await fresh();
    const [problem] = await portProblems([{ ip: '127.0.59.5', port: portOf(any) }], undefined);
    expect(problem).toContain(`127.0.59.5:${portOf(any)} is taken by pid ${process.pid} (`);
    expect(problem).toContain(`, which listens on every address (0.0.0.0:${portOf(any)})`);
  });

  it("are no conflict when the slot's own cyrmaster holds them (it is taken over, not started twice)", async () => {
    const own = await listen('127.0.59.6');
    cleanups.push(() => own.close());
    await fresh();
    expect(await portProblems([{ ip: '127.0.59.6', port: portOf(own) }], process.pid)).toEqual([]);
    expect(await portProblems([{ ip: '127.0.59.6', port: portOf(own) }], process.pid + 1_000_000)).toHaveLength(1);
  });

  it("held by Debian's own Cyrus, name it and the fix", async () => {
    const { child, port } = await listenerProcess('127.0.59.7', '/usr/sbin/cyrmaster');
    cleanups.push(() => child.kill('SIGKILL'));
    await fresh();
    const [problem] = await portProblems([{ ip: '127.0.59.7', port }], undefined);
    expect(problem).toMatch(new RegExp(`^127\\.0\\.59\\.7:${port} is taken by pid ${child.pid} \\(/usr/sbin/cyrmaster -e `));
    expect(problem).toMatch(/: Debian's own Cyrus \(cyrus-imapd\.service\) holds it: systemctl mask --now cyrus-imapd$/);
  });
});

describe('the listeners read from /proc/net/tcp', () => {
  it('are read afresh after a step back of the wall clock: a shared read is aged on monotonic time', async () => {
    const { child, port } = await listenerProcess('127.0.59.12');
    cleanups.push(() => child.kill('SIGKILL'));
    await fresh();
    expect(await portProblems([{ ip: '127.0.59.12', port }], undefined)).toHaveLength(1); // a shared read made now
    child.kill('SIGKILL');
    await child;
    // aged on the wall clock, that read would look 10 minutes younger than zero and be used again (and again after
    // the fresh re-read): the listener long gone, "taken by a process this agent cannot see" (the soak, seed 20261204)
    vi.spyOn(Date, 'now').mockReturnValue(Date.now() - 600_000);
    try {
      await fresh();
      expect(await portProblems([{ ip: '127.0.59.12', port }], undefined)).toEqual([]);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('waiting for a stopped cyrmaster\'s listeners to be released', () => {
  it('ends as soon as the listener is gone, and says false when it stays past the wait', async () => {
    const server = await listen('127.0.59.10');
    cleanups.push(() => server.close());
    const at = { ip: '127.0.59.10', port: portOf(server) };
    // held for the whole wait
    const t0 = performance.now();
    expect(await waitPortsFree([at], 300)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
    // released during the wait
    setTimeout(() => server.close(), 200);
    expect(await waitPortsFree([at], 5000)).toBe(true);
  });

  it('does not wait for a listener on every address of the port (another program may hold it for good)', async () => {
    const any = await listen('0.0.0.0');
    cleanups.push(() => any.close());
    expect(await waitPortsFree([{ ip: '127.0.59.11', port: portOf(any) }], 5000)).toBe(true);
  });
});
