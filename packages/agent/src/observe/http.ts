// The agent's HTTP endpoints (--http-listen, served by the shared ObserveServer with the agent's own certificate;
// every route needs the reader role): /livez, /readyz and /metrics. Ready means what a mail host must have to serve
// as master: a session with the leading coordinator and a lease not yet run out — either missing, its masters are
// fenced or soon will be, and the reason says which.
import { healthRoutes, metricsRoute, type HttpRoute, type MetricsSource, type Readiness } from '@slotctl/shared';
import type { AgentPhase } from '../agent.js';
import type { LinkState } from '../coordinator/link.js';

/** What readiness reads: from memory (the link's state, the lease keeper's shared deadline), never from a disk. */
export interface ReadinessView {
  phase: AgentPhase;
  /** undefined until the agent's link exists. */
  link: LinkState | undefined;
  /** Ms until the deadline the fence enforces (negative: passed); undefined: never held. */
  leaseRemainingMs: number | undefined;
  /** Where the deadline comes from: the coordinator's lease, or the partners' failsafe promises. */
  holder: string;
  term: number;
}

const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** Pure: ready or not, and the one sentence that says why (`nowMs`: the wall clock, for "since"). */
export function agentReadiness(v: ReadinessView, nowMs = Date.now()): Readiness {
  const connected = v.link?.phase === 'connected';
  const remaining = v.leaseRemainingMs;
  const held = remaining !== undefined && remaining > 0;
  const detail = {
    connected,
    coordinator: v.link && 'coordinator' in v.link ? v.link.coordinator : null,
    term: v.term,
    leaseRemainingSeconds: held ? seconds(remaining) : 0,
    holder: held ? v.holder : null,
  };
  // the deadline is monotonic; the wall time it fell on is now minus how long ago it passed
  const lease = remaining === undefined ? 'no lease yet' : held ? undefined : `no lease: masters fenced since ${new Date(nowMs + remaining).toISOString()}`;
  if (v.phase !== 'running') return { ready: false, reason: `agent ${v.phase}${lease ? ` (${lease})` : ''}`, ...detail };
  if (!connected) {
    const link = v.link;
    const why = link?.phase === 'backoff' ? `: ${link.lastError}; next try ${link.coordinator} in ${seconds(link.retryInMs)} s` : link?.phase === 'connecting' ? `: connecting to ${link.coordinator}` : '';
    return { ready: false, reason: `not connected to a coordinator${why}${lease ? `; ${lease}` : ''}`, ...detail };
  }
  if (lease) return { ready: false, reason: remaining === undefined ? `${lease}: connected to ${detail.coordinator}, waiting for the first acknowledged heartbeat` : lease, ...detail };
  return { ready: true, reason: `connected to ${detail.coordinator} (term ${v.term}), lease held for ${detail.leaseRemainingSeconds} s more`, ...detail };
}

export function agentRoutes(deps: { readiness: () => Readiness; metrics: MetricsSource }): HttpRoute[] {
  return [...healthRoutes(deps.readiness), metricsRoute(deps.metrics)];
}
