// awaitReady against real sockets: an IMAP greeter on the slot IP, LMTP on the service IP opened late or never.
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, freePorts } from '../../../../tools/ports.js';
import { awaitReady, SERVICE_LISTEN_GRACE_MS } from './readiness.js';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(host: string, port: number, onConnection: (s: import('node:net').Socket) => void): Promise<Server> {
  const server = createServer((s) => {
    s.on('error', () => undefined); // the probes close without a goodbye
    onConnection(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(port, host, r));
  return server;
}

describe('awaitReady', () => {
  it('greets on the slot IP once, then waits for LMTP on the service IP without greeting again', async () => {
    const imap = await freePort('127.0.0.1');
    const lmtp = await freePort('127.0.0.2');
    let greetings = 0;
    await listen('127.0.0.1', imap, (s) => {
      greetings++;
      s.end('* OK test ready\r\n');
    });
    // the service address starts accepting LMTP a second later
    const late = new Promise<void>((r) => setTimeout(r, 1000)).then(() => listen('127.0.0.2', lmtp, (s) => s.end('220 ok\r\n')));
    const ready = await awaitReady({ pid: process.pid, slotIp: '127.0.0.1', serviceIp: '127.0.0.2', ports: { imap, lmtp }, timeoutMs: 20_000, current: () => true });
    await late;
    expect(ready.outcome).toBe('ready');
    if (ready.outcome !== 'ready') return;
    expect(ready.servingMs).toBeGreaterThanOrEqual(900);
    expect(ready.greetedMs).toBeLessThan(ready.servingMs);
    // one greeting (two if the first answer took over its 500 ms on a busy host), not one per look (~10 before)
    expect(greetings).toBeLessThanOrEqual(2);
  });

  it('fails a master that greets but stays deaf on its service IP', async () => {
    const [imap, lmtp] = await freePorts(2);
    await listen('127.0.0.1', imap!, (s) => s.end('* OK test ready\r\n'));
    const ready = await awaitReady({ pid: process.pid, slotIp: '127.0.0.1', serviceIp: '127.0.0.2', ports: { imap: imap!, lmtp: lmtp! }, timeoutMs: 4 * SERVICE_LISTEN_GRACE_MS, current: () => true });
    expect(ready).toEqual({ outcome: 'failed', why: `cyrmaster answers on 127.0.0.1 but not for its store on 127.0.0.2:${lmtp} (the address was missing when it bound its sockets)` });
  });
});
