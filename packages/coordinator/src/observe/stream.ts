// The status page's live feed: server-sent events (one long GET, which every browser and proxy understands and the
// reader role covers like any other GET). One timer computes the page's model once a second while at least one page
// is open and sends it only when it changed — never once per page, so ten open pages cost what one does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@slotctl/shared';

const TICK_MS = 1000;
const KEEPALIVE_MS = 15_000;
const MAX_CLIENTS = 64;
const KEEPALIVE = Buffer.from(': keepalive\n\n');
export type StreamState = { leading: true; json: string } | { leading: false; leader: string | undefined };

interface Client {
  res: ServerResponse;
  /** The newest frame not written yet because the page has not read the last one (one in flight at most). */
  pending: Buffer | undefined;
}

export class StatusStream {
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | undefined;
  private lastFrame: Buffer | undefined;
  private lastJson: { json: string; at: number } | undefined;
  private lastSentAt = 0;

  constructor(private readonly compute: () => StreamState, private readonly log: Logger) {}

  get size(): number {
    return this.clients.size;
  }

  /** The page's JSON no older than `maxAgeMs` (the stream's last, or a new one): /status.json costs no more. */
  json(maxAgeMs: number): StreamState {
    if (this.lastJson && performance.now() - this.lastJson.at <= maxAgeMs) return { leading: true, json: this.lastJson.json };
    const state = this.compute();
    if (state.leading) this.lastJson = { json: state.json, at: performance.now() };
    return state;
  }

  add(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' });
      res.end(`${MAX_CLIENTS} status pages are open already: close one, or use slotctl status\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    // the request's own timeouts do not apply to a stream that is meant to stay open
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, 30_000);
    const client: Client = { res, pending: undefined };
    this.clients.add(client);
    const drop = () => {
      this.clients.delete(client);
      if (this.clients.size === 0) this.stop();
    };
    res.on('close', drop);
    res.on('error', drop);
    res.on('drain', () => {
      const next = client.pending;
      client.pending = undefined;
      if (next) this.send(client, next);
    });
    // the picture the other pages have (every page sees the same frames), or a first one; then changes
    const first = this.lastFrame ?? this.frame();
    if (first) this.send(client, first);
    if (!this.timer) this.schedule(TICK_MS);
  }

  /** Ends every stream (the process stops). */
  close(): void {
    this.stop();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastFrame = undefined;
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => this.tick(), ms);
  }

  private frame(): Buffer | undefined {
    try {
      const state = this.compute();
      if (state.leading) this.lastJson = { json: state.json, at: performance.now() };
      // encoded once, written to every page as it is
      const frame = Buffer.from(state.leading ? `event: status\ndata: ${state.json}\n\n` : `event: follower\ndata: ${JSON.stringify({ leader: state.leader ?? null })}\n\n`);
      this.lastFrame = frame;
      return frame;
    } catch (err) {
      this.log.error({ err }, 'status page: the status could not be computed');
      return undefined;
    }
  }

  /** A page that has not read the last frame gets only the newest once it has (a slow phone falls behind, not us). */
  private send(client: Client, frame: Buffer): void {
    if (client.res.writableNeedDrain) {
      client.pending = frame;
      return;
    }
    client.res.write(frame);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.clients.size === 0) return;
    const before = this.lastFrame;
    const started = performance.now();
    const frame = this.frame();
    const cost = performance.now() - started;
    let out: Buffer | undefined;
    if (frame && !(before && frame.equals(before))) out = frame;
    else if (performance.now() - this.lastSentAt > KEEPALIVE_MS) out = KEEPALIVE;
    if (out) {
      this.lastSentAt = performance.now();
      for (const c of this.clients) this.send(c, out);
    }
    // the model is computed on the loop that acknowledges heartbeats: a big cluster's (tens of ms) is computed less
    // often, so that the page never takes more than a twentieth of it
    this.schedule(Math.max(TICK_MS, cost * 20));
  }
}
