// The status page's live feed: server-sent events (one long GET, which every browser and proxy understands and the
// reader role covers like any other GET). One timer computes the page's model once a second while at least one page
// is open and sends it only when it changed — never once per page, so ten open pages cost what one does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@slotctl/shared';
import type { LeaderView } from './observer.js';

const TICK_MS = 1000;
const KEEPALIVE_MS = 15_000;
const MAX_CLIENTS = 64;
/** Frames waiting unread for one page beyond this and the page is dropped (its browser reconnects by itself). */
const MAX_UNREAD_BYTES = 16 * 1024 * 1024;
const RECENT_EVENTS = 30;
// not drawn, and they move with every report or heartbeat: kept, they would make every second a change to send
const DROPPED = new Set(['recentLog', 'reportedAt', 'lastHeartbeat', 'mailboxNames']);

/**
 * What the page shows, as the JSON sent: the Status reply without what it does not draw (Cyrus log lines, report
 * times), and the recent events — one stringify, the fields dropped on the way.
 */
export function pageModelJson(view: LeaderView): string {
  const model = {
    status: view.status(),
    events: view.recentEvents(RECENT_EVENTS).map((e) => ({ id: e.id, at: e.at, kind: e.kind, machine: e.machine, store: e.store, slot: e.slot, op: e.op, reason: e.reason, actor: e.actor })),
  };
  return JSON.stringify(model, (key, value: unknown) => (DROPPED.has(key) ? undefined : value));
}

export type StreamState = { leading: true; json: string } | { leading: false; leader: string | undefined };

export class StatusStream {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private lastFrame: string | undefined;
  private lastSentAt = 0;

  constructor(private readonly compute: () => StreamState, private readonly log: Logger) {}

  get size(): number {
    return this.clients.size;
  }

  add(req: IncomingMessage, res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' });
      res.end(`${MAX_CLIENTS} status pages are open already: close one, or use slotctl status\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', connection: 'keep-alive' });
    // the request's own timeouts do not apply to a stream that is meant to stay open
    req.socket.setTimeout(0);
    req.socket.setKeepAlive(true, 30_000);
    this.clients.add(res);
    const drop = () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    };
    res.on('close', drop);
    res.on('error', drop);
    // the picture the other pages have (every page sees the same frames), or a first one; then changes
    const first = this.lastFrame ?? this.frame();
    if (first) this.send(res, first);
    if (!this.timer) this.schedule(TICK_MS);
  }

  /** Ends every stream (the process stops). */
  close(): void {
    this.stop();
    for (const res of this.clients) res.end();
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

  private frame(): string | undefined {
    try {
      const state = this.compute();
      const frame = state.leading ? `event: status\ndata: ${state.json}\n\n` : `event: follower\ndata: ${JSON.stringify({ leader: state.leader ?? null })}\n\n`;
      this.lastFrame = frame;
      return frame;
    } catch (err) {
      this.log.error({ err }, 'status page: the status could not be computed');
      return undefined;
    }
  }

  /**
   * A frame to one page; a page that does not read (a stalled browser, a phone gone to sleep) is dropped once a few
   * frames wait for it, instead of piling them up in this process.
   */
  private send(res: ServerResponse, frame: string): void {
    if (res.writableLength > MAX_UNREAD_BYTES) {
      res.destroy();
      return;
    }
    res.write(frame);
  }

  private tick(): void {
    this.timer = undefined;
    if (this.clients.size === 0) return;
    const before = this.lastFrame;
    const started = performance.now();
    const frame = this.frame();
    const cost = performance.now() - started;
    let out: string | undefined;
    if (frame && frame !== before) out = frame;
    else if (performance.now() - this.lastSentAt > KEEPALIVE_MS) out = ': keepalive\n\n';
    if (out) {
      this.lastSentAt = performance.now();
      for (const res of this.clients) this.send(res, out);
    }
    // the model is computed on the loop that acknowledges heartbeats: a big cluster's (tens of ms) is computed less
    // often, so that the page never takes more than a twentieth of it
    this.schedule(Math.max(TICK_MS, cost * 20));
  }
}
