// The coordinator process: database, liveness, agent sessions and the gRPC server, with an explicit lifecycle.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { type CertificateFiles, MAX_MESSAGE_BYTES, loadContract, type Logger, serverCredentials } from '@slotctl/shared';
import type Database from 'better-sqlite3';
import { openDatabase } from './db/open.js';
import { sqliteStorage } from './db/sqlite/index.js';
import { AgentSessions } from './grpc/agent-sessions.js';
import { listen } from './grpc/listener.js';
import { adminHandlers } from './grpc/admin-service.js';
import { LivenessTracker } from './liveness/tracker.js';
import { AGENT_RECONNECT_MAX_MS } from './liveness/rules.js';
import { Orchestrator } from './operations/orchestrator.js';
import { EventRetention } from './db/retention.js';

export interface CoordinatorConfig {
  /** host:port to listen on. Port 0 picks a free port (tests). */
  listen: string;
  databasePath: string;
  heartbeatIntervalMs: number;
  leaseMs: number;
  /** Switchovers past their preflight at once (default 4). */
  maxSwitchovers?: number;
  /** Machines with masters down at once that still fail over automatically (default 1). */
  maxAutoFailover?: number;
  /** This coordinator's certificate (mutual TLS on every connection); undefined only when run --insecure. */
  certificates?: CertificateFiles;
}

export type CoordinatorState =
  | { phase: 'created' }
  | { phase: 'running'; port: number; since: string }
  | { phase: 'stopping' }
  | { phase: 'stopped' };

export class Coordinator {
  state: CoordinatorState = { phase: 'created' };
  readonly id = randomUUID();
  private db: Database.Database | undefined;
  private server: grpc.Server | undefined;
  private liveness: LivenessTracker | undefined;
  private sessions: AgentSessions | undefined;
  private orchestrator: Orchestrator | undefined;
  private retention: EventRetention | undefined;
  private closeListener: (() => void) | undefined;

  constructor(private readonly config: CoordinatorConfig, private readonly log: Logger) {}

  async start(): Promise<number> {
    const db = openDatabase(this.config.databasePath, this.log);
    this.db = db;
    const storage = sqliteStorage(db);
    const liveness = new LivenessTracker(storage, this.config, this.log);
    // Until then nothing is declared down (liveness counts silence from its start + AGENT_RECONNECT_MAX_MS) and no
    // failover starts (the orchestrator's grace): agents say so to their partners, who keep promising meanwhile.
    const graceMs = this.config.leaseMs + AGENT_RECONNECT_MAX_MS;
    let graceUntil = 0;
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
      },
      this.log,
    );
    orchestrator = new Orchestrator({ storage, push: (machines) => sessions.push(machines), connected: () => sessions.connectedMachines(), log: this.log, crashAt: process.env.SLOTCTL_TEST_CRASH_AT, graceMs, maxSwitchovers: this.config.maxSwitchovers ?? 4, maxAutomaticFailover: this.config.maxAutoFailover });
    this.orchestrator = orchestrator;
    this.liveness = liveness;
    this.sessions = sessions;
    const startedAt = new Date().toISOString();
    const contract = loadContract().slotctl.v1;
    const server = new grpc.Server({
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 5_000,
      // cluster files and status replies of large clusters exceed the 4 MB default
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      // channelz (grpc-js's live introspection, unused here) keeps a record of every connection and call: a thousand
      // agents' streams and their renewals over fresh connections were work and memory for nothing
      'grpc.enable_channelz': 0,
    });
    server.addService(contract.Agent.service, sessions.handlers());
    server.addService(
      contract.Admin.service,
      adminHandlers({
        storage,
        connected: () => sessions.connectedMachines(),
        fenced: () => sessions.fencedMachines(),
        onClusterChanged: (machines) => {
          liveness.reload();
          sessions.push(machines);
        },
        coordinatorId: this.id,
        startedAt,
        log: this.log,
        orchestrator,
        secure: this.config.certificates !== undefined,
      }),
    );
    this.server = server;
    // every handler refuses a caller without a verified identity (AgentSessions.assertIdentity, the Admin roles), so a
    // refused agent can be recorded as an event rather than vanish in a failed handshake
    const listening = await listen(server, this.config.listen, serverCredentials(this.config.certificates, { refuseInHandlers: true })).catch((err: Error) => {
      db.close();
      throw new Error(`cannot listen on ${this.config.listen}: ${err.message}`);
    });
    this.closeListener = listening.close;
    const port = listening.port;
    graceUntil = performance.now() + graceMs;
    liveness.start(undefined, AGENT_RECONNECT_MAX_MS);
    orchestrator.start();
    this.retention = new EventRetention(storage, this.log);
    this.retention.start();
    const security = this.config.certificates ? `mutual TLS as ${this.config.certificates.identity.role} ${this.config.certificates.identity.name}` : 'INSECURE (no TLS, no identities: --insecure)';
    storage.events.append({ kind: 'coordinator.started', reason: `coordinator ${this.id} listening on port ${port}, ${security}` });
    this.state = { phase: 'running', port, since: startedAt };
    this.log.info({ port, database: this.config.databasePath, coordinatorId: this.id, tls: Boolean(this.config.certificates) }, 'coordinator running');
    if (!this.config.certificates) this.log.warn('running without TLS (--insecure): anyone who reaches the port can call every RPC');
    return port;
  }

  /** Graceful: stop accepting calls, end agent sessions, flush, close the database. Forced after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.state.phase !== 'running') return;
    this.state = { phase: 'stopping' };
    this.liveness?.stop();
    this.orchestrator?.stop();
    this.retention?.stop();
    this.closeListener?.();
    this.sessions?.closeAll();
    const server = this.server;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.db?.close();
    this.state = { phase: 'stopped' };
    this.log.info('coordinator stopped');
  }
}
