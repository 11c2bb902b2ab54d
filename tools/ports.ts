// Ports for the processes a test or benchmark starts and that must be told their port before they bind it (a
// coordinator, etcd, a fake peer).
//
// A port the kernel picked with listen(0) and that was then closed again comes from the ephemeral range, the same
// range every outgoing connection takes its local port from. Between our close and the daemon's bind, any of the
// suite's hundreds of connections can take it, and the daemon's bind then fails with EADDRINUSE (a coordinator of
// sessions.test exited 1 at start-up that way in CI). So these ports come from below the ephemeral range, where
// neither connect() nor listen(0) ever goes; each is tried by binding it first. Only a process picking the same
// random port at the same moment could still collide.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

const LOWEST = 10_000;
const SMALLEST_RANGE = 2_000;

/** The ports neither connect() nor listen(0) hands out on this host: below net.ipv4.ip_local_port_range. */
export function quietPortRange(): { low: number; high: number } | undefined {
  let ephemeralLow = 32_768;
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low)) ephemeralLow = low!;
  } catch {
    // not Linux, or no /proc: the kernel's default
  }
  const high = ephemeralLow - 1;
  return high - LOWEST + 1 >= SMALLEST_RANGE ? { low: LOWEST, high } : undefined;
}

function listen(server: Server, port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err));
    server.once('error', onError).listen(port, host, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

/**
 * `n` distinct free ports of `host`, all held open until every one is found (so none is handed out twice), outside
 * the ephemeral range where the host has room for that; else from the kernel (listen(0)), as before.
 */
export async function freePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const range = quietPortRange();
  const servers: Server[] = [];
  try {
    for (let tries = 0; servers.length < n; tries++) {
      const server = createServer();
      const port = range && tries < 200 * n ? range.low + Math.floor(Math.random() * (range.high - range.low + 1)) : 0;
      if (await listen(server, port, host)) servers.push(server);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** One free port of `host` (see freePorts). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return (await freePorts(1, host))[0]!;
}
