// Where agents and slotctl connect. A host:port is listened on with a net server of our own whose connections are
// handed to grpc-js (its connection injector), not with bindAsync: grpc-js listens with Node's default accept
// backlog (511), and a thousand agents reconnecting at once after a coordinator restart overflowed it (the host's
// TcpExtListenOverflows counter): each dropped connection cost its agent a SYN retransmission or a failed attempt
// and a longer reconnect backoff. Other addresses (unix:…) go to bindAsync as before.
import { createServer, type AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';

/** Connections waiting to be accepted (the kernel caps it at net.core.somaxconn). */
export const LISTEN_BACKLOG = 4096;

/** `host:port` or `[v6]:port`; undefined for anything else. */
export function parseHostPort(address: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(address) ?? /^([^:[\]/]+):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port <= 65535 ? { host: m[1]!, port } : undefined;
}

export async function listen(server: grpc.Server, address: string, credentials: grpc.ServerCredentials): Promise<{ port: number; close: () => void }> {
  const hostPort = parseHostPort(address);
  if (!hostPort) {
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    return { port, close: () => undefined };
  }
  const injector = server.createConnectionInjector(credentials);
  const tcp = createServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
  const port = await new Promise<number>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host: hostPort.host, port: hostPort.port, backlog: LISTEN_BACKLOG }, () => {
      tcp.off('error', reject);
      resolve((tcp.address() as AddressInfo).port);
    });
  });
  return { port, close: () => tcp.close() };
}
