// The status page's live feed: server-sent events (one long GET, which every browser and proxy understands and the
// reader role covers like any other GET). One timer computes the page's model once a second while at least one page
// is open and sends it only when it changed — never once per page, so ten open pages cost what one does.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@slotctl/shared';
import type { LeaderView } from './observer.js';

const TICK_MS = 1000;
const KEEPALIVE_MS = 15_000;
const MAX_CLIENTS = 64;
const RECENT_EVENTS = 30;
// not drawn, and they move with every report or heartbeat: kept, they would make every second a change to send
const DROPPED = new Set(['recentLog', 'reportedAt', 'lastHeartbeat', 'mailboxNames']);

/** What the page shows: the Status reply without what it does not draw (Cyrus log lines, report times), and the recent events. */
export function pageModel(view: LeaderView): unknown {
  const status = view.status();
  return {
    status: JSON.parse(JSON.stringify(status, (key, value: unknown) => (DROPPED.has(key) ? undefined : value))) as unknown,
    events: view.recentEvents(RECENT_EVENTS).map((e) => ({ id: e.id, at: e.at, kind: e.kind, machine: e.machine, store: e.store, slot: e.slot, op: e.op, reason: e.reason, actor: e.actor })),
  };
}

export type StreamState = { leading: true; model: unknown } | { leading: false; leader: string | undefined };

export class StatusStream {
  private readonly clients = new Set<ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private last = '';
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
    if (first) res.write(first);
    this.timer ??= setInterval(() => this.tick(), TICK_MS);
  }

  /** Ends every stream (the process stops). */
  close(): void {
    this.stop();
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.last = '';
    this.lastFrame = undefined;
  }

  private frame(): string | undefined {
    let data: string;
    let event: string;
    try {
      const state = this.compute();
      event = state.leading ? 'status' : 'follower';
      data = JSON.stringify(state.leading ? state.model : { leader: state.leader ?? null });
    } catch (err) {
      this.log.error({ err }, 'status page: the status could not be computed');
      return undefined;
    }
    this.last = `${event}\n${data}`;
    this.lastFrame = `event: ${event}\ndata: ${data}\n\n`;
    return this.lastFrame;
  }

  private tick(): void {
    const before = this.last;
    const frame = this.frame();
    let out: string | undefined;
    if (frame && this.last !== before) out = frame;
    else if (performance.now() - this.lastSentAt > KEEPALIVE_MS) out = ': keepalive\n\n';
    if (!out) return;
    this.lastSentAt = performance.now();
    for (const res of this.clients) res.write(out);
  }
}
