// The agent's Prometheus metrics (prom-client, a registry of its own: two agents in one process, as in tests, do not
// share counters). Two sources, as on the coordinator:
// - gauges: what is, read at scrape time from the state the agent's reports to the coordinator carry (the link, the
//   lease keeper's shared memory, each slot's supervisor, its sync watcher's last backlog, the last partition
//   measurement). A scrape measures nothing itself: no file system walk, no process, no await on the slots — so a
//   scraper polling fast cannot hold up the agent's event loop, and the numbers are the ones the coordinator sees;
// - counters: what happened, counted where it happens (one call at each site, through SlotCounters).
// Labels are bounded: per slot and store, per partition role, per action or outcome — never per mailbox.
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { isReplicationStuck, type Backlog, type PartitionReport, type SlotState } from '@slotctl/shared';

/** One slot as the agent sees it now (MachineSlots.observe: the same fields its report carries). */
export interface SlotObservation {
  slot: string;
  store: string;
  /** The role of its applied desired state: MASTER, REPLICA (ROLE_UNSPECIFIED before one). */
  role: string;
  /** Whether its cyrmaster runs now: a stopped, fenced or failed slot runs in no role. */
  running: boolean;
  /** The state its report carries. */
  state: SlotState;
  /** Its sync watcher's last look (undefined before the first). */
  backlog: Backlog | undefined;
  /** The last measurement of its partitions (empty before the first). */
  partitions: readonly PartitionReport[];
}

/** What a scrape reads: cheap, synchronous, from memory. */
export interface AgentView {
  /** A session with the leading coordinator (welcomed: followers refuse sessions). */
  connected: boolean;
  /** The newest leadership term seen (0: none, or the SQLite backend). */
  term: number;
  /** Ms until the deadline the fence enforces (negative: passed); undefined: never held. */
  leaseRemainingMs: number | undefined;
  /** The lease length last granted, ms. */
  leaseMs: number | undefined;
  /** The partner the lease is renewed through now (a heartbeat relay); undefined: directly. */
  relayedVia?: string | undefined;
  slots: readonly SlotObservation[];
}

/**
 * What the fence did: lease-expired (the lease ran out: every master must stop), master-stopped (one master's
 * process group killed and its service IP released for want of a lease), lease-regained (held again after it ran
 * out), master-resumed (one master started again once the lease was held).
 */
export const FENCE_ACTIONS = ['lease-expired', 'master-stopped', 'lease-regained', 'master-resumed'] as const;
export type FenceAction = (typeof FENCE_ACTIONS)[number];

/** One cleanup (cyr_expire) run's outcome; `seconds` only when cyr_expire ran (a slot not running is refused). */
export interface CleanupRun {
  ok: boolean;
  seconds?: number;
  freedBytes?: number;
}

/** What the agent's parts count, one call where each thing happens. */
export interface SlotCounters {
  fenceAction(action: FenceAction): void;
  vipRepaired(slot: string): void;
  cyrusRestarted(slot: string): void;
  cleanupRan(slot: string, run: CleanupRun): void;
}

const ROLE: Record<string, string> = { MASTER: 'master', REPLICA: 'replica' };

export class AgentMetrics implements SlotCounters {
  readonly registry = new Registry();
  private source: (() => AgentView | undefined) | undefined;
  /** The view of the scrape in progress: taken once, read by every gauge. */
  private current: AgentView | undefined;
  private scraping: Promise<unknown> = Promise.resolve();
  /** Slots whose counters have been shown at 0 (increase() then sees their first event). */
  private readonly zeroed = new Set<string>();

  private readonly fences = new Counter({
    name: 'slotctl_fence_actions_total',
    help: `What this agent's fence did, by action: ${FENCE_ACTIONS.join(', ')}. lease-expired: the lease ran out, every master must stop; master-stopped: one master slot killed (its process group) and its service IP released for want of a lease; lease-regained: the lease held again after it ran out; master-resumed: one master slot started again once it was. The fence process (slot-fence) acts at the same deadline on its own and records it in fenced.json.`,
    labelNames: ['action'],
    registers: [this.registry],
  });
  private readonly vipRepairs = new Counter({
    name: 'slotctl_vip_repairs_total',
    help: "Address drift repaired by the reconciliation, per slot: its slot IP or its store's service IP found missing and bound again, or a service IP it does not serve as master released (each is a slot.address-repaired event).",
    labelNames: ['slot'],
    registers: [this.registry],
  });
  private readonly restarts = new Counter({
    name: 'slotctl_cyrus_restarts_total',
    help: "Restarts of a slot's Cyrus master process (cyrmaster) after it crashed, exited or did not become ready (not counted: a crash loop given up, a stop, a fence).",
    labelNames: ['slot'],
    registers: [this.registry],
  });
  private readonly cleanupRuns = new Counter({
    name: 'slotctl_cleanup_runs_total',
    help: "Cleanup (cyr_expire) runs on this agent's slots, by outcome (ok, failed; a slot not running is answered failed, as the coordinator counts it).",
    labelNames: ['slot', 'outcome'],
    registers: [this.registry],
  });
  private readonly cleanupSeconds = new Histogram({
    name: 'slotctl_cleanup_duration_seconds',
    help: 'How long cyr_expire ran, per slot (failed runs too; a refused run is not observed).',
    labelNames: ['slot'],
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
    registers: [this.registry],
  });
  private readonly cleanupFreed = new Counter({
    name: 'slotctl_cleanup_freed_bytes_total',
    help: "Bytes cyr_expire freed on a slot's partitions (bytes waiting for cleanup measured before and after each run).",
    labelNames: ['slot'],
    registers: [this.registry],
  });

  constructor() {
    for (const action of FENCE_ACTIONS) this.fences.inc({ action }, 0);
    const view = () => this.current;
    const registers = [this.registry];
    new Gauge({
      name: 'slotctl_agent_connected',
      help: 'This agent has a session with the leading coordinator (1) or not (0).',
      registers,
      collect() {
        this.set(view()?.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'slotctl_agent_lease_remaining_seconds',
      help: "Seconds left of the lease this machine's masters serve under (the deadline the fence enforces); 0 when no lease is held: masters fenced.",
      registers,
      collect() {
        this.set(Math.max(0, (view()?.leaseRemainingMs ?? 0) / 1000));
      },
    });
    new Gauge({
      name: 'slotctl_agent_lease_seconds',
      help: 'Length of the lease the coordinator last granted (its --lease, longer during a restart or start hold); 0 before the first.',
      registers,
      collect() {
        this.set((view()?.leaseMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'slotctl_agent_lease_relayed',
      help: '1 while the lease is renewed only through a partner (this machine does not reach the coordinator, a partner does), else 0.',
      registers,
      collect() {
        this.set(view()?.relayedVia ? 1 : 0);
      },
    });
    new Gauge({
      name: 'slotctl_agent_term',
      help: 'The newest leadership term this agent has seen (0: none yet, or the SQLite backend); an older one is refused.',
      registers,
      collect() {
        this.set(view()?.term ?? 0);
      },
    });
    new Gauge({
      name: 'slotctl_slot_role',
      help: 'The role each slot runs in now: 1 for master, replica, or none (no cyrmaster runs: stopped, fenced, failed).',
      labelNames: ['slot', 'store', 'role'],
      registers,
      collect() {
        this.reset();
        for (const s of view()?.slots ?? []) this.set({ slot: s.slot, store: s.store, role: s.running ? (ROLE[s.role] ?? 'none') : 'none' }, 1);
      },
    });
    new Gauge({
      name: 'slotctl_slot_state',
      help: 'The state each slot reports: 1 for absent, configured, starting, serving, stopping, stopped or failed (a master whose service IP is missing reports starting).',
      labelNames: ['slot', 'store', 'state'],
      registers,
      collect() {
        this.reset();
        for (const s of view()?.slots ?? []) this.set({ slot: s.slot, store: s.store, state: s.state.toLowerCase() }, 1);
      },
    });
    this.backlogGauges(view);
    this.partitionGauges(view);
  }

  /** Where the state comes from (the agent, once its parts exist); undefined: nothing to show yet. */
  setSource(source: (() => AgentView | undefined) | undefined): void {
    this.source = source;
  }

  fenceAction(action: FenceAction): void {
    this.fences.inc({ action });
  }

  vipRepaired(slot: string): void {
    this.vipRepairs.inc({ slot });
  }

  cyrusRestarted(slot: string): void {
    this.restarts.inc({ slot });
  }

  cleanupRan(slot: string, run: CleanupRun): void {
    this.cleanupRuns.inc({ slot, outcome: run.ok ? 'ok' : 'failed' });
    if (run.seconds !== undefined) this.cleanupSeconds.observe({ slot }, Math.max(0, run.seconds));
    // freed = waiting before − waiting after: mail expunged meanwhile can make it negative, which a counter cannot take
    if (run.freedBytes && run.freedBytes > 0) this.cleanupFreed.inc({ slot }, run.freedBytes);
  }

  /** The exposition; scrapes run one at a time, each over one view of the state. */
  metrics(): Promise<string> {
    return this.scrape(() => this.registry.metrics());
  }

  /** The same as prom-client's JSON (tests, and anything that would rather not parse text). */
  json(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.scrape(() => this.registry.getMetricsAsJSON());
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private scrape<T>(render: () => Promise<T>): Promise<T> {
    const next = this.scraping.then(async () => {
      this.current = this.source?.();
      // before any metric is read: the counters are rendered first
      this.zeroSlots(this.current?.slots ?? []);
      try {
        return await render();
      } finally {
        this.current = undefined;
      }
    });
    this.scraping = next.catch(() => undefined);
    return next;
  }

  /** A slot's counters appear at 0 once it is seen, so that its first crash or repair is an increase. */
  private zeroSlots(slots: readonly SlotObservation[]): void {
    for (const { slot } of slots) {
      if (this.zeroed.has(slot)) continue;
      this.zeroed.add(slot);
      this.vipRepairs.inc({ slot }, 0);
      this.restarts.inc({ slot }, 0);
      this.cleanupFreed.inc({ slot }, 0);
      for (const outcome of ['ok', 'failed']) this.cleanupRuns.inc({ slot, outcome }, 0);
    }
  }

  private backlogGauges(view: () => AgentView | undefined): void {
    // every slot with a sync watcher (a replica's is empty); a slot not looked at yet has no series
    const families: [string, string, (b: Backlog) => number][] = [
      ['slotctl_slot_backlog_files', "Sync log files waiting in a slot's sync directory: changes not yet replicated to its replica.", (b) => Number(b.files ?? 0)],
      ['slotctl_slot_backlog_bytes', "Bytes of the sync log files waiting in a slot's sync directory.", (b) => Number(b.bytes ?? 0)],
      ['slotctl_slot_backlog_oldest_change_age_seconds', 'Age of the oldest unreplicated change of a slot (0: nothing waits): what a failover now would put at risk since then.', (b) => Number(b.oldestChangeAgeMs ?? 0) / 1000],
      ['slotctl_slot_replication_stalled', "1 while a master slot's replication makes no progress although changes wait (--stall-after, 30 s), whatever the cause; slotctl_slot_replication_stuck says which of these are stuck.", (b) => (b.stalled ? 1 : 0)],
      ['slotctl_slot_replication_stuck', "1 while a stalled slot's replica accepts connections and its sync_client still makes no progress (a loop on one mailbox: replicates nothing else; critical); a stall with the replica refusing connections is 0 here.", (b) => (isReplicationStuck(b) ? 1 : 0)],
    ];
    for (const [name, help, value] of families) {
      new Gauge({
        name,
        help,
        labelNames: ['slot', 'store'],
        registers: [this.registry],
        collect() {
          this.reset();
          for (const s of view()?.slots ?? []) if (s.backlog) this.set({ slot: s.slot, store: s.store }, value(s.backlog));
        },
      });
    }
  }

  private partitionGauges(view: () => AgentView | undefined): void {
    const registers = [this.registry];
    const labelNames = ['slot', 'store', 'partition'];
    // a measurement that failed (its error set) shows no series rather than zeros
    const each = (gauge: Gauge, value: (p: PartitionReport) => number) => {
      gauge.reset();
      for (const s of view()?.slots ?? []) for (const p of s.partitions) if (!p.error && p.role) gauge.set({ slot: s.slot, store: s.store, partition: p.role }, value(p));
    };
    const n = (v: PartitionReport['totalBytes']) => Number(v ?? 0);
    new Gauge({
      name: 'slotctl_partition_used_bytes',
      help: "Bytes used on the file system of a slot's partition (data: messages, meta: indexes), size minus the bytes available, at the last measurement (--disk-report-interval).",
      labelNames,
      registers,
      collect() {
        each(this, (p) => Math.max(0, n(p.totalBytes) - n(p.freeBytes)));
      },
    });
    new Gauge({
      name: 'slotctl_partition_size_bytes',
      help: "Size of the file system of a slot's partition, at the last measurement.",
      labelNames,
      registers,
      collect() {
        each(this, (p) => n(p.totalBytes));
      },
    });
    new Gauge({
      name: 'slotctl_partition_inodes_used',
      help: "Inodes used on the file system of a slot's partition, at the last measurement.",
      labelNames,
      registers,
      collect() {
        each(this, (p) => Math.max(0, n(p.totalInodes) - n(p.freeInodes)));
      },
    });
    new Gauge({
      name: 'slotctl_partition_inodes_total',
      help: "Inodes of the file system of a slot's partition, at the last measurement.",
      labelNames,
      registers,
      collect() {
        each(this, (p) => n(p.totalInodes));
      },
    });
  }
}
