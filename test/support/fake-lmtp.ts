// A scriptable LMTP server for the unit tests of the load generator and its loss check: it answers like Cyrus's
// lmtpd, and `behave` decides per message what goes wrong (cut the connection after the data, never answer, refuse).
import net from 'node:net';

export type Behaviour = 'accept' | 'cut-after-data' | 'store-and-cut' | 'silent' | 'refuse-rcpt-4xx' | 'reject-5xx' | 'close-at-greeting';

export interface FakeLmtp {
  port: number;
  /** Messages stored, in order (a store-and-cut stores before it cuts). */
  stored: string[];
  /** Raw data of every message received in full (dot-stuffed as on the wire). */
  received: string[];
  close: () => Promise<void>;
}

/** `behave(n, raw)`: for the n-th (0-based) connection. */
export async function fakeLmtp(behave: (connection: number) => Behaviour): Promise<FakeLmtp> {
  const stored: string[] = [];
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const behaviour = behave(connections++);
    if (behaviour === 'close-at-greeting') {
      socket.destroy();
      return;
    }
    socket.write('220 fake LMTP ready\r\n');
    let buffer = '';
    let inData = false;
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        if (inData) {
          if (line !== '.') {
            data += `${line}\r\n`;
            continue;
          }
          inData = false;
          received.push(data);
          if (behaviour === 'cut-after-data') socket.destroy();
          else if (behaviour === 'store-and-cut') {
            stored.push(data);
            socket.destroy();
          } else if (behaviour === 'reject-5xx') socket.write('554 5.6.0 no thanks\r\n');
          else if (behaviour !== 'silent') {
            stored.push(data);
            socket.write('250 2.1.5 Ok\r\n');
          }
          continue;
        }
        const verb = line.split(/[ :]/)[0]!.toUpperCase();
        if (verb === 'LHLO') socket.write('250-fake\r\n250 PIPELINING\r\n');
        else if (verb === 'MAIL') socket.write('250 2.1.0 Ok\r\n');
        else if (verb === 'RCPT') socket.write(behaviour === 'refuse-rcpt-4xx' ? '452 4.2.2 over quota\r\n' : '250 2.1.5 Ok\r\n');
        else if (verb === 'DATA') {
          inData = true;
          data = '';
          socket.write('354 go ahead\r\n');
        } else if (verb === 'QUIT') socket.end('221 2.0.0 bye\r\n');
        else socket.write('500 5.5.2 what\r\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    stored,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
