import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { establishedTo } from './process.js';

describe('establishedTo', () => {
  it('counts established connections whose local end is ip:port (from /proc/net/tcp)', async () => {
    const server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    expect(await establishedTo('127.0.0.1', port)).toBe(0);
    const clients = await Promise.all([1, 2].map(() => new Promise<net.Socket>((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); })));
    await new Promise((r) => setTimeout(r, 50));
    expect(await establishedTo('127.0.0.1', port)).toBe(2);
    expect(await establishedTo('127.0.0.2', port)).toBe(0);
    for (const c of clients) c.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
