// One simulated agent for bench/coordinator-sessions: the real Agent.Session protocol over a connection of its own,
// behaving as packages/agent/src/coordinator/link.ts does where the coordinator can tell: hello with its slots'
// reports, a heartbeat at once on welcome and then every interval (with its partners' views), `applied` and a full
// report after each desired state, reports now and then, Agent.Renew over a fresh connection while acknowledgements
// are overdue, and reconnection with the agent's own backoff. It counts its lease with the agent's own Lease class,
// so "would have fenced" means what it means on a real host; bench/sim-peers.ts adds its partners (reconnect-now
// and the failsafe), as packages/agent/src/peer/ does.
//
// Several coordinators (the etcd backend), as the link: the list in order, starting at the first; a follower's
// refusal sends it to the leader it names at once (or, while none is elected, to the next address soon), anything
// else to the next address after the backoff (nextCoordinator from @slotctl/shared decides); a session that gets no
// connection in 1.5 s or no welcome in 5 s goes to the next address; one silent for a lease with the lease gone is
// left; a term older than the newest seen is refused; renewals go to the coordinator of the current session.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import {
  TLS_CHANNEL_OPTIONS,
  channelCredentials,
  electionRetryDelay,
  expectIdentity,
  isStaleTerm,
  nextCoordinator,
  notLeaderOf,
  serverIdentityCheck,
  tlsPaths,
  loadContract,
  type AgentClient,
  type AgentMessage,
  type CoordinatorMessage__Output,
  type HeartbeatAck__Output,
  type ListPosition,
  type SlotReport,
  type TlsPaths,
  type TryOutcome,
} from '@slotctl/shared';
import { Lease, leaseMargin, monotonicMs, renewalDue } from '../packages/agent/src/lease/lease.js';
import { reconnectDelay } from '../packages/agent/src/coordinator/backoff.js';

type Stream = grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output>;

export interface SimShared {
  /** The coordinator addresses (--coordinator), in order; the leader is found among them. */
  coordinators: readonly string[];
  machines: number;
  slotsPerMachine: number;
  /** ms between full reports in steady state (0: only after a desired state, as an idle agent). */
  reportEveryMs: number;
  /**
   * Not what the agent does today (--agents-wait-for-ready): a session waits for the channel to connect (grpc-js
   * waitForReady) instead of failing at once while the channel is in its own reconnect backoff.
   */
  waitForReady: boolean;
  /** With mutual TLS: the PKI directory holding agent-MACHINE.crt/.key for each agent. */
  pkiDir?: string;
  /** Heartbeat latencies (send → ack) are recorded while true. */
  measuring: () => boolean;
  latencies: number[];
  errors: { count: number };
}

/** As CoordinatorLink (several addresses): no connection this long, or connected and no welcome this long: the next address. */
const CONNECT_WAIT_MS = 1500;
const WELCOME_WAIT_MS = 5000;

/** The agent's channel options (session.ts), plus a subchannel of its own: each real agent is its own host. */
const CHANNEL = { ...TLS_CHANNEL_OPTIONS, 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 2_000, 'grpc.use_local_subchannel_pool': 1 };

/** Mutual TLS as the agent's, checking the server's identity the same way, over one TLS context made here. */
function onceContextCredentials(paths: TlsPaths): grpc.ChannelCredentials {
  const context = createSecureContext({ ca: readFileSync(paths.ca), cert: readFileSync(paths.cert), key: readFileSync(paths.key) });
  return grpc.credentials.createFromSecureContext(context, { checkServerIdentity: serverIdentityCheck(expectIdentity('coordinator')) });
}

export class SimAgent {
  readonly machine: string;
  /** One client per coordinator address, made when first tried (as the link). */
  private readonly clients = new Map<string, AgentClient>();
  /** The address the current (or last) session went to, and how it got there. */
  private position: ListPosition = { index: 0, hops: 0 };
  /** The coordinator of the welcomed session: where renewals go. */
  private sessionCoordinator = '';
  /** Newest leadership term seen (0: none, or SQLite). */
  private newestTerm = 0;
  /** monotonic ms of the last message on the current stream. */
  private lastHeardAt = 0;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private readonly instanceId: string;
  private stream: Stream | undefined;
  private streamOpenedAt = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private attempt = 0;
  private intervalMs = 1000;
  private margin = 0;
  private leaseMs = 5000;
  private lastAckAt = 0;
  private connected = false;
  private stopped = false;
  private renewing = false;
  private renewClient: { coordinator: string; client: AgentClient } | undefined;
  readonly lease = new Lease();
  /** Stream heartbeats in flight, for latency (renewals are not timed: they exist only when something is late). */
  private readonly streamSent = new Map<number, number>();
  /** Wall-clock ms of the first acknowledgement, and of the first one on a session opened after `mark`. */
  firstAckAt = 0;
  backAt = 0;
  private markAt = 0;
  /**
   * Times the lease ran out while held ("would have fenced"), and the longest gap past a deadline (ms): by the
   * lease alone, and as the agent would, with the failsafe (partners' promises) holding the masters on.
   */
  fences = 0;
  worstOverdueMs = 0;
  private expiredSince = 0;
  fencesWithFailsafe = 0;
  private fencedWithFailsafe = false;
  renewals = 0;
  sessions = 0;
  /** Sessions a follower refused ("is not the leader"), and ones ended for a deposed leader's term. */
  notLeader = 0;
  staleTerms = 0;
  /**
   * After `mark`: when the session broke, sessions tried, when one was welcomed (wall ms after the mark), reconnects
   * cut short by a partner (and of those, failed at once), follower refusals, and the term of the session welcomed.
   */
  restart = { brokenMs: -1, attempts: 0, welcomedMs: -1, now: 0, nowFailedFast: 0, notLeader: 0, term: 0 };
  /** The current session was opened by reconnectNow (a partner reaches the coordinator), not by the backoff. */
  private openedNow = false;
  /** As CoordinatorLink: when the stream opened (monotonic ms) and until when its coordinator promotes nothing. */
  private openedMono = 0;
  private graceUntil = 0;
  private welcomed = false;
  private readonly credentials: grpc.ChannelCredentials;

  constructor(private readonly index: number, private readonly shared: SimShared) {
    this.machine = `m${index}`;
    this.instanceId = `sim-${index}-${process.pid}-${Date.now()}`;
    // Renewed files are not looked for nor checked (a run is minutes long; the agent's CertificateFiles does both), and
    // the TLS context is made once per agent: grpc-js's
    // certificate-provider credentials (the agent's, which take renewed files) make one per connection, ~1.3 ms of
    // OpenSSL 3 each — on a real host the agent's own CPU, here a thousand agents' on the coordinator's cores.
    this.credentials = shared.pkiDir ? onceContextCredentials(tlsPaths(shared.pkiDir, { role: 'agent', name: this.machine })) : channelCredentials(undefined, expectIdentity('coordinator'));
    if (shared.coordinators.length === 0) throw new Error('a simulated agent needs at least one coordinator address');
  }

  private get several(): boolean {
    return this.shared.coordinators.length > 1;
  }

  private clientFor(address: string): AgentClient {
    let client = this.clients.get(address);
    if (!client) {
      const { Agent } = loadContract().slotctl.v1;
      client = new Agent(address, this.credentials, CHANNEL);
      this.clients.set(address, client);
    }
    return client;
  }

  start(): void {
    this.connect();
  }

  /** From now on, `backAt` waits for an acknowledgement on a new session (the coordinator is being restarted). */
  mark(wallMs: number): void {
    this.markAt = wallMs;
    this.backAt = 0;
    this.restart = { brokenMs: -1, attempts: 0, welcomedMs: -1, now: 0, nowFailedFast: 0, notLeader: 0, term: 0 };
  }

  /**
   * Called every few tens of ms (CLOCK_MONOTONIC): a lease that was held and is gone is a fence the real agent would
   * have done, unless its failsafe (`failsafeUntil`, from its partners' promises) holds.
   */
  watch(now: number, failsafeUntil: number | undefined): void {
    const deadline = this.lease.deadline;
    if (deadline === undefined) return;
    if (now >= deadline) {
      if (!this.expiredSince) {
        this.expiredSince = deadline;
        this.fences++;
      }
      this.worstOverdueMs = Math.max(this.worstOverdueMs, now - deadline);
    } else {
      this.expiredSince = 0;
    }
    // promises extend a lease without a lapse; after one, only the lease brings the masters back (ServingAuthority)
    const held = now < deadline || (!this.fencedWithFailsafe && failsafeUntil !== undefined && now < failsafeUntil);
    if (!held && !this.fencedWithFailsafe) this.fencesWithFailsafe++;
    this.fencedWithFailsafe = !held;
  }

  /** As ServingAuthority.holds: the lease, or the failsafe that extended it without a lapse. */
  holds(): boolean {
    return !this.fencedWithFailsafe && this.lease.deadline !== undefined;
  }

  /** As CoordinatorLink.coordinatorGraceUntil. */
  coordinatorGraceUntil(now = monotonicMs()): number | undefined {
    return this.coordinatorReachable() && now < this.graceUntil ? this.graceUntil : undefined;
  }

  /** As the agent: connected, and an acknowledgement within two heartbeat intervals. */
  coordinatorReachable(): boolean {
    return this.connected && performance.now() - this.lastAckAt < 2 * this.intervalMs;
  }

  /** A partner reaches the coordinator: the reconnect backoff is cut short (as CoordinatorLink.reconnectNow). */
  reconnectNow(): void {
    if (this.stream || this.stopped || !this.retryTimer) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.markAt) this.restart.now++;
    this.connect(true);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reportTimer);
    clearTimeout(this.welcomeTimer);
    this.stream?.cancel();
    for (const client of this.clients.values()) client.close();
    this.renewClient?.client.close();
  }

  private connect(now = false): void {
    if (this.stopped) return;
    this.openedNow = now;
    this.welcomed = false;
    this.openedMono = monotonicMs();
    this.graceUntil = 0;
    const client = this.clientFor(this.shared.coordinators[this.position.index]!);
    const stream: Stream = this.shared.waitForReady ? client.Session(new grpc.Metadata({ waitForReady: true })) : client.Session();
    this.stream = stream;
    this.streamOpenedAt = Date.now();
    this.sessions++;
    if (this.markAt) this.restart.attempts++;
    stream.on('data', (m: CoordinatorMessage__Output) => this.onMessage(stream, m));
    stream.on('error', (err: grpc.ServiceError) => {
      const follower = notLeaderOf(err);
      this.onBroken(stream, follower ? { kind: 'not-leader', leader: follower.leader } : undefined);
    });
    stream.on('end', () => this.onBroken(stream));
    stream.write({ hello: { machine: this.machine, agentVersion: 'bench', instanceId: this.instanceId, slots: this.reports() } });
    if (this.several) this.watchWelcome(stream, client);
  }

  /** As the link with several addresses: one that does not answer the hello is left for the next. */
  private watchWelcome(stream: Stream, client: AgentClient): void {
    const check = (waited: number) => {
      if (stream !== this.stream || this.welcomed) return;
      const connected = client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
      if (connected && waited < WELCOME_WAIT_MS) {
        this.welcomeTimer = setTimeout(() => setImmediate(check, WELCOME_WAIT_MS), WELCOME_WAIT_MS - waited);
        return;
      }
      this.onBroken(stream);
    };
    clearTimeout(this.welcomeTimer);
    this.welcomeTimer = setTimeout(() => setImmediate(check, CONNECT_WAIT_MS), CONNECT_WAIT_MS);
  }

  /** A term older than the newest seen ends the session (a deposed leader); true when refused. */
  private refusedTerm(stream: Stream, term: number): boolean {
    if (!isStaleTerm(this.newestTerm, term)) {
      this.newestTerm = Math.max(this.newestTerm, term);
      return false;
    }
    this.staleTerms++;
    this.onBroken(stream);
    return true;
  }

  private onMessage(stream: Stream, message: CoordinatorMessage__Output): void {
    if (stream !== this.stream) return;
    this.lastHeardAt = monotonicMs();
    if (message.body === 'welcome') {
      const w = message.welcome!;
      if (this.refusedTerm(stream, Number(w.term))) return;
      clearTimeout(this.welcomeTimer);
      this.attempt = 0;
      this.position = { ...this.position, hops: 0 };
      this.sessionCoordinator = this.shared.coordinators[this.position.index]!;
      if (this.markAt && this.streamOpenedAt > this.markAt) this.restart.term = Number(w.term);
      this.connected = true;
      this.welcomed = true;
      if (this.markAt && this.restart.welcomedMs < 0 && this.streamOpenedAt > this.markAt) this.restart.welcomedMs = Date.now() - this.markAt;
      this.lastAckAt = performance.now();
      this.graceUntil = w.restartGraceMs > 0 ? this.openedMono + w.restartGraceMs : 0;
      this.intervalMs = w.heartbeatIntervalMs;
      this.margin = leaseMargin(w.leaseMs);
      this.leaseMs = w.leaseMs;
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = setInterval(() => this.heartbeat(stream), this.intervalMs);
      this.heartbeat(stream);
      if (this.shared.reportEveryMs > 0 && !this.reportTimer) this.scheduleReports();
    } else if (message.body === 'ack') {
      if (this.refusedTerm(stream, Number(message.ack!.term))) return;
      this.acked(message.ack!, stream);
    } else if (message.body === 'desired') {
      if (this.refusedTerm(stream, Number(message.desired!.term))) return;
      stream.write({ applied: { version: message.desired!.version, slots: [] } });
      stream.write({ reports: { slots: this.reports() } });
    }
  }

  private acked(ack: HeartbeatAck__Output, stream: Stream | undefined): void {
    this.lastAckAt = performance.now();
    const seq = Number(ack.seq);
    const sent = this.streamSent.get(seq);
    if (sent !== undefined) {
      for (const k of this.streamSent.keys()) if (k <= seq) this.streamSent.delete(k);
      if (this.shared.measuring()) this.shared.latencies.push(performance.now() - sent);
    }
    this.lease.acked(seq, ack.leaseMs, this.margin);
    const now = Date.now();
    if (!this.firstAckAt) this.firstAckAt = now;
    if (this.markAt && !this.backAt && stream && this.streamOpenedAt > this.markAt) this.backAt = now;
  }

  private heartbeat(stream: Stream): void {
    if (stream !== this.stream) return;
    if (this.several) setImmediate(() => this.checkSilence(stream));
    const seq = ++this.seq;
    this.lease.sentAt(seq, monotonicMs());
    this.streamSent.set(seq, performance.now());
    if (this.streamSent.size > 64) this.streamSent.delete(this.streamSent.keys().next().value!);
    stream.write({ heartbeat: { seq, peers: this.peerViews(), fenced: this.fencedWithFailsafe } });
  }

  /**
   * As the link with several addresses: a coordinator silent for a whole lease, with the lease gone, has died without
   * closing anything; the next address may lead by now.
   */
  private checkSilence(stream: Stream): void {
    if (stream !== this.stream || !this.connected) return;
    const now = monotonicMs();
    const deadline = this.lease.deadline;
    if (now - this.lastHeardAt < this.leaseMs || (deadline !== undefined && now < deadline)) return;
    this.onBroken(stream);
  }

  /**
   * As the agent's lease thread (lease/worker.ts, every 250 ms): acknowledgements overdue or late (renewalDue), so a
   * heartbeat goes as Agent.Renew over a new connection, one at a time.
   */
  renewIfOverdue(): void {
    if (!this.connected || this.renewing) return;
    const now = monotonicMs();
    const lastAckAt = now - (performance.now() - this.lastAckAt);
    if (!renewalDue({ now, lastAckAt, heartbeatIntervalMs: this.intervalMs, leaseMs: this.leaseMs, deadline: this.lease.deadline })) return;
    this.renewing = true;
    const seq = ++this.seq;
    this.lease.sentAt(seq, monotonicMs());
    this.renewals++;
    const stream = this.stream;
    const { Agent } = loadContract().slotctl.v1;
    // as the agent's lease thread: a connection of its own kept for renewals (one TLS handshake, not one per renewal),
    // to the coordinator of the current session (a new one after a failover)
    const coordinator = this.sessionCoordinator;
    if (this.renewClient && this.renewClient.coordinator !== coordinator) {
      this.renewClient.client.close();
      this.renewClient = undefined;
    }
    const kept = (this.renewClient ??= { coordinator, client: new Agent(coordinator, this.credentials, { ...TLS_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 }) });
    kept.client.Renew({ machine: this.machine, instanceId: this.instanceId, seq }, { deadline: Date.now() + 2000 }, (err: grpc.ServiceError | null, ack?: HeartbeatAck__Output) => {
      if (err && this.renewClient === kept) {
        kept.client.close();
        this.renewClient = undefined;
      }
      this.renewing = false;
      if (err || !ack || stream !== this.stream) return;
      // an older term's acknowledgement renews nothing (a deposed leader)
      if (isStaleTerm(this.newestTerm, Number(ack.term))) return;
      this.newestTerm = Math.max(this.newestTerm, Number(ack.term));
      this.acked(ack, undefined);
    });
  }

  /**
   * As CoordinatorLink.onBroken: a follower's refusal sends the agent to the leader it names at once (or, during an
   * election, to the next address soon); anything else to the next address after the reconnect backoff.
   */
  private onBroken(stream: Stream, outcome: TryOutcome = { kind: 'failed' }): void {
    if (stream !== this.stream || this.stopped) return;
    this.stream = undefined;
    this.connected = false;
    if (outcome.kind === 'not-leader') {
      this.notLeader++;
      if (this.markAt) this.restart.notLeader++;
    } else {
      this.shared.errors.count++;
    }
    if (this.markAt && this.restart.brokenMs < 0) this.restart.brokenMs = Date.now() - this.markAt;
    // a reconnect-now on a channel still in its own reconnect backoff fails at once (and lengthens the agent's)
    if (this.markAt && this.openedNow && !this.welcomed && Date.now() - this.streamOpenedAt < 200) this.restart.nowFailedFast++;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.welcomeTimer);
    stream.cancel();
    const next = nextCoordinator(this.shared.coordinators, this.position, outcome);
    this.position = { index: next.index, hops: next.hops };
    const delay = next.wait === 'now' ? 0 : next.wait === 'soon' ? electionRetryDelay() : reconnectDelay(this.attempt++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
  }

  /** Now and then a full report, as slot state, backlogs and log lines change on a real host (first one jittered). */
  private scheduleReports(): void {
    const every = this.shared.reportEveryMs;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = setInterval(() => {
        if (this.connected) this.stream?.write({ reports: { slots: this.reports(true) } });
      }, every);
    }, Math.random() * every);
  }

  /** Partners: the machines holding this one's replicas (i+1…i+4) and masters (i−1…i−4), as the bench lays them out. */
  private peerViews() {
    const n = this.shared.machines;
    const out = [];
    for (const d of [1, 2, 3, 4, -1, -2, -3, -4]) out.push({ machine: `m${(this.index + d + n) % n}`, heard: true, lastHeardMsAgo: 400 + Math.floor(Math.random() * 600) });
    return out;
  }

  /** Per slot: its last log lines (one slot gains a line per periodic report, as mail arrives somewhere). */
  private logs: string[][] | undefined;
  private readonly measuredAt = new Date().toISOString();

  /**
   * Slots b<i>-0…8 are masters, b<i>-9…17 replicas; as much as a real agent sends (backlog, log tail, two measured
   * partitions). `change` adds a log line to one slot: the rest is what the previous report said.
   */
  reports(change = false): SlotReport[] {
    const half = this.shared.slotsPerMachine / 2;
    const line = (slot: string, n: number) => `${new Date().toISOString()} ${slot} imap[${20_000 + n}]: login: client.example [192.0.2.${n % 250}] u${n}@example.org plaintext User logged in`;
    this.logs ??= Array.from({ length: this.shared.slotsPerMachine }, (_, k) => Array.from({ length: 5 }, (_, n) => line(`b${this.index}-${k}`, n)));
    if (change) {
      const k = Math.floor(Math.random() * this.logs.length);
      this.logs[k] = [...this.logs[k]!.slice(1), line(`b${this.index}-${k}`, this.seq)];
    }
    return this.logs.map((recentLog, k) => {
      const slot = `b${this.index}-${k}`;
      const master = k < half;
      return {
        slot,
        state: 'SERVING' as const,
        role: master ? ('MASTER' as const) : ('REPLICA' as const),
        epochApplied: 1,
        pid: 10_000 + k,
        stateReason: 'cyrmaster answers on its service address',
        backlog: { files: master ? 1 : 0, bytes: master ? 2048 : 0, mailboxes: master ? 1 : 0, oldestChangeAgeMs: master ? 120 : 0, mailboxNames: master ? [`user.u${k}`] : [] },
        recentLog,
        partitions: ['data', 'meta'].map((role) => ({
          role,
          path: `/srv/${slot}/${role}`,
          totalBytes: 1e12,
          freeBytes: 6e11,
          totalInodes: 6e7,
          freeInodes: 5e7,
          deletedBytes: 1e6,
          expungedBytes: 2e6,
          measuredAt: this.measuredAt,
          error: '',
        })),
      };
    });
  }
}
