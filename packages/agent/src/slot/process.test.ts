import net from 'node:net';
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childProcesses, connectionsTo, pidAlive, procAddresses, signalStillRunning, socketsAt, type ProcessRef } from './process.js';

const listen = async (host: string, port = 0): Promise<net.Server> => {
  const server = net.createServer(() => undefined);
  await new Promise<void>((r) => server.listen(port, host, r));
  return server;
};

describe('socketsAt', () => {
  it('counts the listener and the established connections whose local end is ip:port (from /proc/net/tcp)', async () => {
    const server = await listen('127.0.0.1');
    const port = (server.address() as net.AddressInfo).port;
    // the same port on another address (another slot's service IP) is not counted
    const other = await listen('127.0.0.2', port);
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 1, established: 0 });
    // both accepted before the listener closes: a connection still in its accept queue is reset with it (the test
    // failed now and then on a busy host when it only waited 50 ms)
    let accepted = 0;
    const bothAccepted = new Promise<void>((r) => server.on('connection', () => { if (++accepted === 2) r(); }));
    const clients = await Promise.all([1, 2].map(() => new Promise<net.Socket>((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); })));
    await bothAccepted;
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 1, established: 2 });
    expect(await socketsAt('127.0.0.2', port)).toEqual({ listening: 1, established: 0 });
    expect(await socketsAt('127.0.0.3', port)).toEqual({ listening: 0, established: 0 });
    const closed = new Promise<void>((r) => server.close(() => r())); // stops listening; the accepted connections go on
    await new Promise((r) => setTimeout(r, 50));
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 0, established: 2 });
    for (const c of clients) c.destroy();
    await closed;
    await new Promise<void>((r) => other.close(() => r()));
  });
});

describe('connectionsTo', () => {
  it('counts the established connections whose remote end is ip:port', async () => {
    const server = await listen('127.0.0.1');
    const port = (server.address() as net.AddressInfo).port;
    expect(await connectionsTo('127.0.0.1', port)).toBe(0);
    const client = await new Promise<net.Socket>((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); });
    await new Promise((r) => setTimeout(r, 50));
    expect(await connectionsTo('127.0.0.1', port)).toBe(1);
    expect(await connectionsTo('127.0.0.2', port)).toBe(0);
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});

describe('procAddresses', () => {
  it('writes addresses as /proc/net/tcp{,6} does: 32-bit words in little-endian byte order', () => {
    expect(procAddresses('127.0.0.1')).toEqual(['0100007F', '0000000000000000FFFF00000100007F']);
    expect(procAddresses('10.231.3.12')).toEqual(['0C03E70A', '0000000000000000FFFF00000C03E70A']);
    expect(procAddresses('::1')).toEqual(['00000000000000000000000001000000']);
    expect(procAddresses('2001:db8::1')).toEqual(['B80D0120000000000000000001000000']);
    expect(procAddresses('2001:db8:0:0:0:0:0:1')).toEqual(procAddresses('2001:db8::1'));
    expect(procAddresses('::ffff:127.0.0.1')).toEqual(['0000000000000000FFFF00000100007F']);
    expect(procAddresses('fd00::a:b')).toEqual(['000000FD00000000000000000B000A00']);
    expect(() => procAddresses('10.0.0')).toThrow(/not an IP address/);
  });
});

describe('childProcesses and signalStillRunning', () => {
  it('sees the named children of a process and signals only those still the same process', async () => {
    // a parent with two sleeps and a tail: only the sleeps are asked for
    const parent = spawn('sh', ['-c', 'sleep 30 & sleep 30 & tail -f /dev/null & wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
    try {
      // the shell starts its three children one after the other: on a busy host the tail may come seconds after the
      // sleeps (CI beside two busy loops saw the sleeps without it), so wait for all three
      let refs: ProcessRef[] = [];
      let tails: ProcessRef[] = [];
      for (let i = 0; i < 500 && (refs.length < 2 || tails.length < 1); i++) {
        await new Promise((r) => setTimeout(r, 20));
        refs = childProcesses(parent.pid!, ['sleep']);
        tails = childProcesses(parent.pid!, ['tail']);
      }
      expect(refs).toHaveLength(2);
      expect(tails).toHaveLength(1);
      // a PID whose start time is not the one seen is another process: left alone
      expect(signalStillRunning(refs.map((r) => ({ ...r, started: `${r.started}0` })), 'SIGTERM')).toBe(0);
      expect(signalStillRunning(refs, 'SIGTERM')).toBe(2);
      for (let i = 0; i < 500 && refs.some((r) => pidAlive(r.pid)); i++) await new Promise((r) => setTimeout(r, 20));
      expect(childProcesses(parent.pid!, ['sleep'])).toHaveLength(0);
      expect(signalStillRunning(refs, 'SIGTERM')).toBe(0);
    } finally {
      // its children by PID first (killed alone, the shell would leave them running)
      for (const child of childProcesses(parent.pid!, ['sleep', 'tail'])) process.kill(child.pid, 'SIGKILL');
      parent.kill('SIGKILL');
    }
    expect(childProcesses(999_999_999, ['sleep'])).toEqual([]);
  });
});
