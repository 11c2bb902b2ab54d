// The coordinator's HTTP endpoints: health for load balancers, /metrics for Prometheus, and the live status page
// (read-only: every route needs the reader role). The page is static files and one server-sent-event stream.
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { healthRoutes, metricsRoute, sendHttp, type HttpRoute, type Logger } from '@slotctl/shared';
import type { CoordinatorObserver } from './observer.js';
import { StatusStream } from './stream.js';
import { pageModelJson } from './page-model.js';

export interface CoordinatorHttpDeps {
  observer: CoordinatorObserver;
  /** Who leads now (the gRPC server knows: it serves the leader's handlers or answers "not the leader"). */
  leadership: () => { leading: boolean; leader: string | undefined; address: string };
  /** 'sqlite' (the only coordinator) or 'etcd' (one leader among several). */
  store: 'sqlite' | 'etcd';
  log: Logger;
}

const RECENT_EVENTS = 30;
const PAGE_DIR = new URL('../../page/', import.meta.url);
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/page.js': { file: 'page.js', type: 'text/javascript; charset=utf-8' },
  '/page.css': { file: 'page.css', type: 'text/css; charset=utf-8' },
};
// the page loads nothing but its own files and its own stream: no inline script, no third party
const PAGE_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function coordinatorRoutes(deps: CoordinatorHttpDeps): { routes: HttpRoute[]; stream: StatusStream } {
  const { observer } = deps;
  const readiness = () => {
    const l = deps.leadership();
    if (l.leading && observer.leader) return { ready: true, reason: deps.store === 'etcd' ? 'leading' : 'serving (SQLite, the only coordinator)', leader: true, leaderAddress: l.address };
    if (deps.store === 'sqlite') return { ready: false, reason: 'starting: the database is not open yet', leader: false };
    if (l.leader) return { ready: true, reason: `following the leader at ${l.leader}`, leader: false, leaderAddress: l.leader };
    return { ready: false, reason: 'no leader known: an election in progress, or etcd unreachable', leader: false };
  };
  const stream = new StatusStream(() => {
    const view = observer.leader;
    if (view) return { leading: true as const, json: pageModelJson({ status: view.status(), events: view.recentEvents(RECENT_EVENTS) }) };
    return { leading: false as const, leader: deps.leadership().leader };
  }, deps.log);
  const assets = Object.entries(ASSETS).map(([path, a]): HttpRoute => {
    const body = readFileSync(new URL(a.file, PAGE_DIR));
    return {
      path,
      role: 'reader',
      what: path === '/' ? 'the live status page' : 'the status page\'s own file',
      handle: (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': a.type, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff', 'content-security-policy': PAGE_POLICY, 'referrer-policy': 'no-referrer' });
        res.end(body);
      },
    };
  });
  const routes: HttpRoute[] = [
    ...healthRoutes(readiness),
    {
      path: '/leader',
      role: 'reader',
      what: 'leadership: 200 on the leading coordinator, 503 elsewhere (JSON names the leader)',
      handle: (_req, res) => {
        const r = readiness();
        sendHttp(res, r.leader ? 200 : 503, `${JSON.stringify(r)}\n`, 'application/json');
      },
    },
    metricsRoute(observer.metrics),
    ...assets,
    {
      path: '/status.json',
      role: 'reader',
      what: 'what the page shows, once (JSON; 503 with the leader on a follower)',
      handle: (_req, res) => {
        // what the stream last sent, if recent: a script polling this costs no more than an open page
        const state = stream.json(2000);
        if (!state.leading) sendHttp(res, 503, `${JSON.stringify({ leading: false, leader: state.leader ?? null })}\n`, 'application/json');
        else sendHttp(res, 200, state.json, 'application/json');
      },
    },
    { path: '/status/stream', role: 'reader', what: 'what the page shows, live (server-sent events)', handle: (req, res) => stream.add(req, res) },
  ];
  return { routes, stream };
}
