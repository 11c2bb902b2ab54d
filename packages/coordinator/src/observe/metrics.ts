// The coordinator's Prometheus metrics (prom-client: the exposition format, histograms and registries as Prometheus'
// own client libraries do them). Two sources, so that nothing is counted twice or missed:
// - the state, read at scrape time from the leading coordinator's database and sessions: machines, stores, epochs,
//   masters, running operations, open at-risk records (gauges: what is, not what happened);
// - what happened, from the events table — every committed change writes its event in the same transaction, so the
//   counters follow exactly what was committed, and nothing in the decision code has to remember to count.
// Labels are bounded: per machine, per store, per kind — never per mailbox, message or operation id.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClusterView } from '../status/view.js';
import type { EventRow, OperationRow } from '../db/rows.js';

/** What the leading coordinator shows at a scrape (undefined while it does not lead). */
export interface LeaderSnapshot {
  term: number;
  view: ClusterView;
  /** How long the last computation of `view` took (it is refreshed in the background while read). */
  viewSeconds?: number;
  running: readonly OperationRow[];
  atRiskOpen: number;
  agentsConnected: number;
  /** The oldest `limit` events committed after `afterId` (oldest first), and the operation an event names. */
  eventsAfter(afterId: number, limit: number): EventRow[];
  operation(id: string): OperationRow | undefined;
  lastEventId(): number;
}

const OPERATION_END = /^operation\.(succeeded|failed|refused|cancelled)$/;
// read in order, in batches (a cluster apply of a thousand machines writes ~10,000 events at once)
const EVENTS_PER_READ = 20_000;

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private source: (() => LeaderSnapshot | undefined) | undefined;
  /** The snapshot of the scrape in progress: taken once, read by every gauge. */
  private current: LeaderSnapshot | undefined;
  private scraping: Promise<unknown> = Promise.resolve();
  /** Per machine, whether its agent last said it was fenced (across its sessions: a reconnect is not a new fence). */
  private readonly fencedNow = new Map<string, boolean>();
  /** The last event counted (undefined: none yet — the first look marks, history is not counted). */
  private lastEventId: number | undefined;

  private readonly events = new Counter({ name: 'slotctl_events_total', help: 'Events written to the cluster log, by kind (see slotctl events).', labelNames: ['kind'], registers: [this.registry] });
  private readonly operations = new Counter({ name: 'slotctl_operations_total', help: 'Operations ended, by kind and outcome (succeeded, failed, refused, cancelled).', labelNames: ['kind', 'outcome'], registers: [this.registry] });
  private readonly operationSeconds = new Histogram({
    name: 'slotctl_operation_duration_seconds',
    help: 'Operations from their start to their end, by kind and outcome.',
    labelNames: ['kind', 'outcome'],
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });
  private readonly failovers = new Counter({ name: 'slotctl_failovers_total', help: 'Failovers started (a machine down: its masters promoted on their replicas).', registers: [this.registry] });
  private readonly cleanups = new Counter({ name: 'slotctl_cleanup_runs_total', help: 'Cleanup (cyr_expire) runs ended, by outcome (ok, failed).', labelNames: ['outcome'], registers: [this.registry] });
  private readonly fences = new Counter({ name: 'slotctl_fences_total', help: 'Times a connected agent reported its masters fenced (it held no lease), by machine.', labelNames: ['machine'], registers: [this.registry] });
  private readonly ackSeconds = new Histogram({
    name: 'slotctl_heartbeat_ack_seconds',
    help: "From an agent's heartbeat (or lease renewal) arriving to its acknowledgement leaving, once committed.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor() {
    // both outcomes exist from the start: an alert on increase() sees the first failure, not a new series
    for (const outcome of ['ok', 'failed']) this.cleanups.inc({ outcome }, 0);
    const snapshot = () => this.current;
    new Gauge({
      name: 'slotctl_coordinator_leader',
      help: 'This coordinator leads (1) or follows (0); with several coordinators on etcd exactly one leads.',
      registers: [this.registry],
      collect() {
        this.set(snapshot() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'slotctl_coordinator_term',
      help: 'The leadership term this coordinator leads in (0: SQLite, the only coordinator).',
      registers: [this.registry],
      collect() {
        const s = snapshot();
        this.reset();
        if (s) this.set(s.term);
      },
    });
    new Gauge({
      name: 'slotctl_coordinator_view_seconds',
      help: 'How long the coordinator took to compute the cluster view these metrics and the status page show (refreshed in the background, at most every 20 times this).',
      registers: [this.registry],
      collect() {
        const s = snapshot();
        this.reset();
        if (s?.viewSeconds !== undefined) this.set(s.viewSeconds);
      },
    });
    new Gauge({
      name: 'slotctl_agents_connected',
      help: 'Agents with a session to this coordinator.',
      registers: [this.registry],
      collect() {
        this.set(snapshot()?.agentsConnected ?? 0);
      },
    });
    this.stateGauges(snapshot);
  }

  /**
   * Where the state comes from: the leading coordinator, or undefined while this one follows. Events are counted from
   * `fromEventId` on (a new leader counts what it does, from the moment it leads: its failovers first of all).
   */
  setSource(source: (() => LeaderSnapshot | undefined) | undefined, fromEventId?: number): void {
    this.source = source;
    this.lastEventId = fromEventId;
    this.fencedNow.clear();
  }

  heartbeatAcknowledged(seconds: number): void {
    this.ackSeconds.observe(seconds);
  }

  /** A connected agent's heartbeat said whether its masters are fenced: a fence counts when it begins. */
  fencedState(machine: string, fenced: boolean): void {
    if (fenced && !this.fencedNow.get(machine)) this.fences.inc({ machine });
    this.fencedNow.set(machine, fenced);
  }

  /**
   * The exposition; scrapes run one at a time (each reads one snapshot of the state). The families with a series per
   * machine or store (28,000 at 9,000 stores) are written here directly: through prom-client's gauges (a labelled
   * set, then the generic formatter) they cost most of a 150 ms scrape.
   */
  metrics(): Promise<string> {
    const next = this.scraping.then(async () => {
      this.current = this.source?.();
      try {
        this.countEvents();
        const text = await this.registry.metrics();
        return `${text.endsWith('\n') ? text : `${text}\n`}${perItemFamilies(this.current?.view)}`;
      } finally {
        this.current = undefined;
      }
    });
    this.scraping = next.catch(() => undefined);
    return next;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts the events committed since the last look (on each scrape; the first look of a leader only marks). */
  private countEvents(): void {
    const s = this.current;
    if (!s) return;
    if (this.lastEventId === undefined) {
      this.lastEventId = s.lastEventId();
      return;
    }
    for (;;) {
      const batch = s.eventsAfter(this.lastEventId, EVENTS_PER_READ);
      for (const e of batch) this.count(e, s);
      if (batch.length > 0) this.lastEventId = batch[batch.length - 1]!.id;
      if (batch.length < EVENTS_PER_READ) return;
    }
  }

  private count(e: EventRow, s: LeaderSnapshot): void {
    this.events.inc({ kind: e.kind });
    if (e.kind === 'cleanup.done' || e.kind === 'cleanup.failed') this.cleanups.inc({ outcome: e.kind === 'cleanup.done' ? 'ok' : 'failed' });
    if (e.kind === 'operation.started' && e.op && s.operation(e.op)?.kind === 'failover') this.failovers.inc();
    const end = OPERATION_END.exec(e.kind);
    if (end && e.op) {
      const op = s.operation(e.op);
      const kind = op?.kind ?? 'unknown';
      this.operations.inc({ kind, outcome: end[1]! });
      if (op) this.operationSeconds.observe({ kind, outcome: end[1]! }, Math.max(0, (Date.parse(e.at) - Date.parse(op.createdAt)) / 1000));
    }
  }

  private stateGauges(snapshot: () => LeaderSnapshot | undefined): void {
    const registers = [this.registry];
    new Gauge({
      name: 'slotctl_machines',
      help: 'Machines by state.',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of countBy(snapshot()?.view.machines ?? [], (m) => m.state || 'unknown')) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'slotctl_stores',
      help: 'Stores by health.',
      labelNames: ['health'],
      registers,
      collect() {
        this.reset();
        for (const [health, n] of countBy(snapshot()?.view.stores ?? [], (st) => st.health || 'unknown')) this.set({ health }, n);
      },
    });
    new Gauge({
      name: 'slotctl_operations_running',
      help: 'Operations running now, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        for (const [kind, n] of countBy(snapshot()?.running ?? [], (op) => op.kind)) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: 'slotctl_at_risk_open',
      help: 'At-risk records open: changes an old master may not have replicated before a failover, to recover (slotctl store at-risk).',
      registers,
      collect() {
        this.set(snapshot()?.atRiskOpen ?? 0);
      },
    });
  }
}

function countBy<T>(items: readonly T[], key: (t: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/** A label value as the text format writes it: backslash, double quote and newline escaped. */
export function labelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** The families with a series per machine or store, in Prometheus' text format (HELP and TYPE even when empty). */
export function perItemFamilies(view: ClusterView | undefined): string {
  const out: string[] = [];
  const family = (name: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
  family('slotctl_machine_state', "1 for each machine's current state (up, suspect, down, unknown, fenced, returning, retired), as slotctl status shows it.");
  for (const m of view?.machines ?? []) out.push(`slotctl_machine_state{machine="${labelValue(String(m.name))}",state="${labelValue(m.state || 'unknown')}"} 1`);
  family('slotctl_machine_relayed', '1 while a machine is heard only through a partner (cut from the coordinator, not from its partners: its heartbeats are relayed and no desired state reaches it), else 0.');
  for (const m of view?.machines ?? []) out.push(`slotctl_machine_relayed{machine="${labelValue(String(m.name))}"} ${m.relayedVia ? 1 : 0}`);
  const stores = view?.stores ?? [];
  family('slotctl_store_health', "1 for each store's health: ok, degraded (served, but its replica or replication is not right), down (not served), unknown.");
  for (const st of stores) out.push(`slotctl_store_health{store="${labelValue(String(st.name))}",health="${labelValue(st.health || 'unknown')}"} 1`);
  family('slotctl_store_epoch', "Each store's epoch: it moves at every change of master (a switchover, a failover).");
  for (const st of stores) out.push(`slotctl_store_epoch{store="${labelValue(String(st.name))}"} ${Number(st.epoch ?? 0)}`);
  family('slotctl_store_master', "1 for each store's master machine (as the database says).");
  for (const st of stores) if (st.master?.machine) out.push(`slotctl_store_master{store="${labelValue(String(st.name))}",machine="${labelValue(st.master.machine)}"} 1`);
  return `${out.join('\n')}\n`;
}
