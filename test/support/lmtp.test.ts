// The hand-spoken LMTP attempt tells a failure before the data (nothing stored) from one after it (maybe stored).
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeLmtp, fakeLmtp } from './fake-lmtp.js';
import { lmtpDeliverOnce, rawMessage } from './lmtp.js';

const message = { from: 'a@example.org', to: 'ann@example.org', raw: rawMessage({ Subject: 'x', 'Message-ID': '<x@example.org>' }, 'hello\n.starts with a dot\n') };
let server: FakeLmtp | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('one LMTP attempt', () => {
  it('delivers, dot-stuffing lines that start with a dot', async () => {
    server = await fakeLmtp(() => 'accept');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message)).toMatchObject({ outcome: 'ok', cutAfterData: false });
    expect(server.stored).toHaveLength(1);
    expect(server.stored[0]).toContain('\r\n..starts with a dot\r\n');
  });

  it('counts a connection cut after the final dot as possibly stored', async () => {
    server = await fakeLmtp(() => 'cut-after-data');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message)).toMatchObject({ outcome: 'retry', cutAfterData: true });
    expect(server.received).toHaveLength(1);
  });

  it('counts a server that never answers the data as possibly stored', async () => {
    server = await fakeLmtp(() => 'silent');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message, { connectMs: 1000, replyMs: 300 })).toMatchObject({ outcome: 'retry', cutAfterData: true });
  });

  it('counts failures before the data as nothing stored', async () => {
    server = await fakeLmtp(() => 'close-at-greeting');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message)).toMatchObject({ outcome: 'retry', cutAfterData: false });
    await server.close();
    server = await fakeLmtp(() => 'refuse-rcpt-4xx');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message)).toMatchObject({ outcome: 'retry', cutAfterData: false, reason: expect.stringContaining('452') });
    const port = server.port;
    await server.close();
    server = undefined;
    expect(await lmtpDeliverOnce('127.0.0.1', port, message)).toMatchObject({ outcome: 'retry', cutAfterData: false });
  });

  it('reports a 5xx answer to the data as rejected', async () => {
    server = await fakeLmtp(() => 'reject-5xx');
    expect(await lmtpDeliverOnce('127.0.0.1', server.port, message)).toMatchObject({ outcome: 'rejected', cutAfterData: false });
  });
});
