// The status page's live feed over a real HTTP connection on loopback: the picture at once, then only changes, the
// same frames to every page, a follower said as such, and nothing left running once the last page is gone.
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { StatusStream, type StreamState } from './stream.js';

let server: Server | undefined;
const opened: IncomingMessage[] = [];

afterEach(async () => {
  for (const r of opened.splice(0)) r.destroy();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

async function serve(stream: StatusStream): Promise<number> {
  server = createServer((req, res) => stream.add(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** Opens the stream; `frames` fills with each event's name and data as they arrive. */
async function open(port: number): Promise<{ frames: { event: string; data: string }[] }> {
  const frames: { event: string; data: string }[] = [];
  const res = await new Promise<IncomingMessage>((resolve) => get({ host: '127.0.0.1', port, path: '/' }, resolve));
  opened.push(res);
  let buffer = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buffer += chunk;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (block.startsWith(':')) continue;
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? '';
      const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
      frames.push({ event, data });
    }
  });
  return { frames };
}

const until = async (what: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('status stream', () => {
  it('sends the picture at once, then only what changed, the same to every page', async () => {
    let state: StreamState = { leading: true, json: '{"n":1}' };
    let computed = 0;
    const stream = new StatusStream(() => {
      computed++;
      return state;
    }, pino({ level: 'silent' }));
    const port = await serve(stream);
    const a = await open(port);
    await until(() => a.frames.length === 1);
    expect(a.frames[0]).toEqual({ event: 'status', data: '{"n":1}' });
    // unchanged for two ticks: nothing more
    await until(() => computed >= 3);
    expect(a.frames).toHaveLength(1);
    // a second page gets the current picture without a computation of its own
    const before = computed;
    const b = await open(port);
    await until(() => b.frames.length === 1);
    expect(computed).toBe(before);
    state = { leading: true, json: '{"n":2}' };
    await until(() => a.frames.length === 2 && b.frames.length === 2);
    expect(a.frames[1]).toEqual(b.frames[1]);
    expect(JSON.parse(b.frames[1]!.data)).toEqual({ n: 2 });
    // a coordinator that stops leading says so, with the leader it knows
    state = { leading: false, leader: '10.0.0.2:7400' };
    await until(() => a.frames.length === 3);
    expect(a.frames[2]).toEqual({ event: 'follower', data: '{"leader":"10.0.0.2:7400"}' });
    stream.close();
  });

  it('stops computing once the last page is gone', async () => {
    let computed = 0;
    const stream = new StatusStream(() => {
      computed++;
      return { leading: true, json: '{}' };
    }, pino({ level: 'silent' }));
    const port = await serve(stream);
    const a = await open(port);
    await until(() => a.frames.length === 1);
    opened.pop()!.destroy();
    await until(() => stream.size === 0);
    const after = computed;
    await new Promise((r) => setTimeout(r, 1500));
    expect(computed).toBe(after);
  });
});
