// The routes every slotctl process serves: liveness, readiness and metrics. Cheap by design: a load balancer may poll
// readiness every second, and Prometheus scrapes metrics every 15-60 s.
import type { HttpRoute } from './server.js';
import { sendHttp } from './server.js';

export interface Readiness {
  ready: boolean;
  /** One sentence: why (not) ready — what a person reading a load balancer's log needs. */
  reason: string;
  [detail: string]: unknown;
}

/** `/livez` (the process answers) and `/readyz` (200 when `ready()` says so, 503 otherwise; JSON either way). */
export function healthRoutes(ready: () => Readiness): HttpRoute[] {
  return [
    { path: '/livez', role: 'reader', what: 'liveness: 200 while the process answers', handle: (_req, res) => sendHttp(res, 200, 'ok\n') },
    {
      path: '/readyz',
      role: 'reader',
      what: 'readiness: 200 when it can do its job, 503 otherwise (JSON with the reason)',
      handle: (_req, res) => {
        const r = ready();
        sendHttp(res, r.ready ? 200 : 503, `${JSON.stringify(r)}\n`, 'application/json');
      },
    },
  ];
}

/** Anything with prom-client's Registry shape. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

/** `/metrics` in Prometheus' text format. */
export function metricsRoute(source: MetricsSource): HttpRoute {
  return {
    path: '/metrics',
    role: 'reader',
    what: 'Prometheus metrics (text format)',
    handle: async (_req, res) => sendHttp(res, 200, await source.metrics(), source.contentType),
  };
}
