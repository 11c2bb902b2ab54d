// The leading coordinator: liveness, agent sessions, operations and the Admin service over a backend, with an explicit
// lifecycle (started when it leads, stopped when it no longer does or the process ends).
import { randomUUID } from 'node:crypto';
import type { CertificateFiles, Logger } from '@slotctl/shared';
import type { Backend } from './db/backend.js';
import { AgentSessions } from './grpc/agent-sessions.js';
import type { CoordinatorServer } from './grpc/server.js';
import { LivenessTracker } from './liveness/tracker.js';
import { AGENT_RECONNECT_MAX_MS, holdMs } from './liveness/rules.js';
import { Orchestrator } from './operations/orchestrator.js';
import { testCrashPoint } from './operations/framework/crash-hook.js';
import { EventRetention } from './db/retention.js';
import { adminHandlers, clusterStatus, clusterView, type AdminDeps } from './grpc/admin-service.js';
import type { CoordinatorObserver } from './observe/observer.js';
import { ViewCache } from './observe/view-cache.js';
import { DEFAULT_SEED_LIMITS } from './operations/seed-limits.js';

export interface CoordinatorConfig {
  heartbeatIntervalMs: number;
  leaseMs: number;
  /** Switchovers past their preflight at once (default 4). */
  maxSwitchovers?: number;
  /** Machines with masters down at once that still fail over automatically (default 1). */
  maxAutoFailover?: number;
  /** Full copies at once (re-replication, replica moves), cluster-wide and per machine (default 2 and 1). */
  maxSeeds?: number;
  maxSeedsPerMachine?: number;
  /** This coordinator's certificate (mutual TLS on every connection); undefined only when run --insecure. */
  certificates?: CertificateFiles;
  /** The HTTP endpoints' view of this process (metrics, health, status page): shown this coordinator while it leads. */
  observer?: CoordinatorObserver;
}

/**
 * The leadership this coordinator acts under. SQLite: the only coordinator, term 0, for ever. etcd: the term it was
 * elected at and the deadline of its etcd lease (ha/leadership.ts): no agent's lease is granted beyond it.
 */
export interface Leading {
  term: number;
  until: () => number;
  /** How long agents may take to reach it after it starts leading, beyond their lease (liveness/rules.ts). */
  agentReconnectMs: number;
}

export const SOLE_COORDINATOR: Leading = { term: 0, until: () => Number.POSITIVE_INFINITY, agentReconnectMs: AGENT_RECONNECT_MAX_MS };

export type CoordinatorState =
  | { phase: 'created' }
  | { phase: 'running'; port: number; since: string; term: number }
  | { phase: 'stopping' }
  | { phase: 'stopped' };

/**
 * What a leading coordinator does: liveness, agent sessions, operations, retention, the Admin service — over a
 * backend it is handed and a server that outlives it (a coordinator that loses leadership stops this and goes on
 * answering "not the leader").
 */
export class Coordinator {
  state: CoordinatorState = { phase: 'created' };
  readonly id = randomUUID();
  private backend: Backend | undefined;
  private server: CoordinatorServer | undefined;
  private liveness: LivenessTracker | undefined;
  private sessions: AgentSessions | undefined;
  private orchestrator: Orchestrator | undefined;
  private retention: EventRetention | undefined;
  private views: ViewCache<unknown> | undefined;

  constructor(private readonly config: CoordinatorConfig, private readonly log: Logger) {}

  start(backend: Backend, server: CoordinatorServer, leading: Leading = SOLE_COORDINATOR): void {
    this.backend = backend;
    this.server = server;
    const storage = backend.storage;
    const liveness = new LivenessTracker(storage, this.config, this.log);
    // Until then nothing is declared down (liveness counts silence from its start + the agents' reconnect time) and no
    // failover starts (the orchestrator's grace): agents say so to their partners, who keep promising meanwhile.
    // A newly elected leader is a restarted coordinator: the same grace.
    const graceMs = this.config.leaseMs + leading.agentReconnectMs;
    const graceUntil = performance.now() + graceMs;
    // the orchestrator re-evaluates its operations soon after an agent reports or a session starts or ends
    let orchestrator: Orchestrator | undefined;
    const sessions = new AgentSessions(
      storage,
      liveness,
      {
        ...this.config,
        coordinatorId: this.id,
        helloTimeoutMs: 10_000,
        onReports: (_machine, reports) => {
          orchestrator?.cleanup.noteReports(reports);
          orchestrator?.wakeSoon();
        },
        onSessionChange: () => orchestrator?.wakeSoon(),
        restartGraceMs: () => Math.max(0, Math.floor(graceUntil - performance.now())),
        requireIdentity: this.config.certificates !== undefined,
        term: leading.term,
        // no renewal once this coordinator's own leadership may have ended: a leader cut from etcd but not from its
        // agents must not keep their masters serving while a new leader fails them over (ARCHITECTURE.md, HA)
        // a hold (restart, start) ends no later than a lease after the leadership, like every other grant: a leader elected
        // next counts silence only from its own start
        grantLeaseMs: (hold) => {
          const left = leading.until() - performance.now();
          return left > 0 ? this.config.leaseMs + Math.floor(Math.min(holdMs(this.config.leaseMs, hold), left)) : 0;
        },
        durable: () => backend.durable(),
        observe: this.config.observer?.sessions,
      },
      this.log,
    );
    orchestrator = new Orchestrator({ storage, push: (machines) => sessions.push(machines), connected: () => sessions.connectedMachines(), log: this.log, crashAt: testCrashPoint(), graceMs, maxSwitchovers: this.config.maxSwitchovers ?? 4, maxAutomaticFailover: this.config.maxAutoFailover, seedLimits: { cluster: this.config.maxSeeds ?? DEFAULT_SEED_LIMITS.cluster, perMachine: this.config.maxSeedsPerMachine ?? DEFAULT_SEED_LIMITS.perMachine } });
    this.orchestrator = orchestrator;
    // a machine declared down comes back through a session of its own, never through a partner's relay; its
    // failover is decided now, not at the orchestrator's next 200 ms pass (a tenth of a 2 s lease)
    liveness.onDown = (machine) => {
      sessions.relays.forget(machine);
      setImmediate(() => orchestrator.wake());
    };
    this.liveness = liveness;
    this.sessions = sessions;
    const startedAt = new Date().toISOString();
    const adminDeps: AdminDeps = {
      storage,
      connected: () => sessions.connectedMachines(),
      fenced: () => sessions.fencedMachines(),
      relayed: () => liveness.relayedVia(),
      onClusterChanged: (machines) => {
        liveness.reload();
        sessions.push(machines);
      },
      coordinatorId: this.id,
      startedAt,
      log: this.log,
      orchestrator,
      secure: this.config.certificates !== undefined,
      durable: () => backend.durable(),
      backend: backend.describe,
      term: leading.term,
    };
    const admin = adminHandlers(adminDeps);
    liveness.start(undefined, leading.agentReconnectMs);
    orchestrator.start();
    this.retention = new EventRetention(storage, this.log);
    this.retention.start();
    server.serve({ agent: sessions.handlers(), admin });
    const security = this.config.certificates ? `mutual TLS as ${this.config.certificates.identity.role} ${this.config.certificates.identity.name}` : 'INSECURE (no TLS, no identities: --insecure)';
    storage.events.append({ kind: 'coordinator.started', reason: `coordinator ${this.id} listening on port ${server.port}, ${security}, state in ${backend.describe}` });
    this.state = { phase: 'running', port: server.port, since: startedAt, term: leading.term };
    // one view of the cluster for the metrics and the status page, refreshed in the background while they are read
    const views = new ViewCache(() => clusterView(adminDeps));
    this.views = views;
    const viewNow = () => views.get().view;
    this.config.observer?.lead({
      snapshot: () => ({
        term: leading.term,
        view: viewNow(),
        viewSeconds: views.get().ms / 1000,
        running: storage.operations.running(),
        atRiskOpen: storage.atRisk.listOpen().length,
        agentsConnected: sessions.connectedMachines().size,
        eventsAfter: (afterId, limit) => storage.events.list({ afterId, limit, oldestFirst: true }),
        operation: (id) => storage.operations.get(id),
        lastEventId: () => storage.events.list({ limit: 1 })[0]?.id ?? 0,
      }),
      status: () => clusterStatus(adminDeps, viewNow()),
      recentEvents: (limit) => storage.events.list({ limit }),
      lastEventId: () => storage.events.list({ limit: 1 })[0]?.id ?? 0,
    });
    this.log.info({ port: server.port, backend: backend.describe, term: leading.term, coordinatorId: this.id, tls: Boolean(this.config.certificates) }, 'coordinator running');
    if (!this.config.certificates) this.log.warn('running without TLS (--insecure): anyone who reaches the port can call every RPC');
  }

  /**
   * Stops acting: calls are answered "not the leader" (`leader`: where the new one is, if known), agent sessions end,
   * the backend is closed (what is not durable yet is flushed first when `flush`: a clean stop).
   */
  async stop(options: { flush?: boolean; leader?: string } = {}): Promise<void> {
    if (this.state.phase !== 'running') return;
    this.state = { phase: 'stopping' };
    this.config.observer?.follow();
    this.views?.stop();
    this.server?.follow(options.leader);
    this.liveness?.stop();
    this.orchestrator?.stop();
    this.retention?.stop();
    this.sessions?.closeAll(options.flush ?? false);
    if (options.flush) await this.backend?.durable().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'the last changes could not be made durable'));
    this.backend?.close();
    this.state = { phase: 'stopped' };
    this.log.info('coordinator stopped leading');
  }
}
