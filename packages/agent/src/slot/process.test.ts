import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { socketsAt } from './process.js';

describe('socketsAt', () => {
  it('counts the listener and the established connections whose local end is ip:port (from /proc/net/tcp)', async () => {
    const server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 1, established: 0 });
    const clients = await Promise.all([1, 2].map(() => new Promise<net.Socket>((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); })));
    await new Promise((r) => setTimeout(r, 50));
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 1, established: 2 });
    expect(await socketsAt('127.0.0.2', port)).toEqual({ listening: 0, established: 0 });
    const closed = new Promise<void>((r) => server.close(() => r())); // stops listening; the accepted connections go on
    await new Promise((r) => setTimeout(r, 50));
    expect(await socketsAt('127.0.0.1', port)).toEqual({ listening: 0, established: 2 });
    for (const c of clients) c.destroy();
    await closed;
  });
});
