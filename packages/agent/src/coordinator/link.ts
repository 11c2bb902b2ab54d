// The agent's link to the coordinator (its side of the Agent.Session stream; the coordinator calls its end a
// session): connect, say hello, heartbeat at the interval the coordinator asks for, apply
// every desired state that arrives, and reconnect with backoff whenever the stream breaks.
//
// Several coordinators, one leader (the etcd backend): --coordinator lists them. A follower refuses the session and
// names the leader; the link goes there at once, else to the next address (coordinator-choice.ts decides). It
// remembers the newest leadership term it has seen (persisted beside the epochs) and refuses an older one: a
// deposed leader that has not noticed yet must not move this machine's slots.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  SLOTCTL_VERSION,
  describeError,
  electionRetryDelay,
  isStaleTerm,
  loadContract,
  nextCoordinator,
  notLeaderOf,
  withContext,
  type ListPosition,
  type TryOutcome,
  type AgentClient,
  type AgentMessage,
  type CoordinatorMessage__Output,
  type DesiredState__Output,
  type Logger,
  type PeerView,
  type CertificateFiles,
  TLS_CHANNEL_OPTIONS,
  channelCredentials,
  expectIdentity,
  UnavailableError,
  type HeartbeatAck__Output,
  type RelayedRenew__Output,
} from '@slotctl/shared';
import { planApply, type ApplyPlan, type AppliedSlots } from '../state/apply-plan.js';
import type { Withheld } from '../peer/failsafe.js';
import type { AppliedStore } from '../state/applied-store.js';
import type { MachineSlots } from '../machine/slots.js';
import { reconnectDelay } from './backoff.js';
import { ReportPacer, type ReportUrgency } from './report-pacer.js';
import { monotonicMs } from '../lease/lease.js';
import type { LeaseKeeper } from '../lease/keeper.js';
import { appliedRolesDigest } from '../lease/relay.js';

export type LinkState =
  | { phase: 'idle' }
  | { phase: 'connecting'; attempt: number; coordinator: string }
  | { phase: 'connected'; since: number; heartbeatIntervalMs: number; leaseMs: number; coordinator: string; term: number }
  | { phase: 'backoff'; attempt: number; retryInMs: number; lastError: string; coordinator: string }
  | { phase: 'stopped' };

type Stream = grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output>;

/**
 * With several coordinators, a session that has heard nothing this long while its channel is not connected goes to
 * the next address: a host that is gone leaves SYNs unanswered for minutes (the OS's retries; grpc-js has no connect
 * timeout), and a failover must not wait on it. Connected, it may take up to WELCOME_WAIT_MS (a leader in a
 * reconnect storm welcomes within seconds, and the channel keeps connecting in the background meanwhile).
 */
const CONNECT_WAIT_MS = 1500;
const WELCOME_WAIT_MS = 5000;

export interface LinkOptions {
  /** Mutual TLS: this machine's certificate; the coordinator must present a coordinator's. Undefined: --insecure. */
  certificates?: CertificateFiles;
  machine: string;
  /** Coordinator addresses (--coordinator), in order, each once; the leader is found among them. */
  coordinators: readonly string[];
  applied: AppliedStore;
  slots: MachineSlots;
  log: Logger;
  /** Counts the lease from what this link sends and what is acknowledged (on a thread of its own). */
  lease: Pick<LeaseKeeper, 'session' | 'sessionEnded' | 'sent' | 'acked' | 'term' | 'coordinatorLeaseHeld' | 'roles'>;
  /** Every desired state, before it is applied (the partners and this machine's address come with it). */
  onDesired: (desired: DesiredState__Output) => void;
  /** Promotions this agent must not accept yet (failsafe promises); they are applied again when the promise ends. */
  withhold: (plan: ApplyPlan, previous: AppliedSlots, desired: DesiredState__Output) => Withheld[];
  /** Sent with every heartbeat. */
  peerViews: () => PeerView[];
  /** Slots are starting here: each heartbeat then asks for a start hold (a lease as long as the default 5 s). */
  starting?: () => boolean;
  /** Each welcome: the coordinator's heartbeat interval and lease (what the partners' timings follow). */
  onWelcome?: (heartbeatIntervalMs: number, leaseMs: number) => void;
  fenced: () => boolean;
  /**
   * The acknowledgement of a heartbeat sent fenced names the coordinator's desired version for this machine, read
   * when it acknowledged; `matches` once every desired state received before it has been applied: whether that is
   * the version applied here.
   */
  confirmed?: (version: string, matches: boolean) => void;
}

export class CoordinatorLink {
  state: LinkState = { phase: 'idle' };
  readonly instanceId = randomUUID();
  /** One client per address, made when first tried (each keeps its connection for the next try). */
  private readonly clients = new Map<string, AgentClient>();
  private stream: Stream | undefined;
  /** The address the current (or last) stream went to, and how it got there. */
  private position: ListPosition = { index: 0, hops: 0 };
  /** Newest leadership term seen here or by an agent before this one (0: none, or the SQLite backend). */
  private newestTerm: number;
  /** monotonic ms of the last message on the current stream. */
  private lastHeardAt = 0;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private attempt = 0;
  private applying: Promise<void> = Promise.resolve();
  private frozen = false;
  /** monotonic ms of the last heartbeat acknowledgement: what a lease is counted from. */
  lastAckAt = 0;
  private lastDesired: DesiredState__Output | undefined;
  private reapplyTimer: NodeJS.Timeout | undefined;
  /**
   * Recent heartbeats: when each was sent (the acknowledgement's round trip in the logs) and whether it said fenced
   * (its acknowledgement confirms, or not, the desired state applied here).
   */
  private readonly sentAt = new Map<number, { at: number; fenced: boolean }>();
  /** Those awaiting the acknowledgement of heartbeat `seq` on the current stream (see renewNow). */
  private readonly ackWaiters = new Set<{ seq: number; done: (acked: boolean) => void }>();
  /** stop() has begun: a stream that breaks meanwhile is not replaced. */
  private stopping = false;
  /** The version of the last desired state applied here (as far as it could be: refused or withheld slots aside). */
  appliedVersion: string | undefined;
  /** When the current stream was opened, and until when its coordinator said it promotes nothing (monotonic ms). */
  private openedAt = 0;
  private graceUntil = 0;

  constructor(private readonly options: LinkOptions) {
    if (options.coordinators.length === 0) throw new Error('CoordinatorLink needs at least one coordinator address');
    this.newestTerm = options.applied.term;
  }

  /** The newest leadership term seen (0: none yet, or the SQLite backend). */
  get term(): number {
    return this.newestTerm;
  }

  private get log(): Logger {
    return this.options.log;
  }

  private get several(): boolean {
    return this.options.coordinators.length > 1;
  }

  private client(address: string): AgentClient {
    let client = this.clients.get(address);
    if (!client) {
      const { Agent } = loadContract().slotctl.v1;
      client = new Agent(address, channelCredentials(this.options.certificates, expectIdentity('coordinator')), {
        ...TLS_CHANNEL_OPTIONS,
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2_000,
      });
      this.clients.set(address, client);
    }
    return client;
  }

  start(): void {
    this.options.lease.roles(appliedRolesDigest(this.options.applied.current()));
    this.connect();
  }

  /**
   * Passes a partner's renewal on to the coordinator (Peer.Relay → Agent.Relay) over this session's connection, and
   * returns the acknowledgement as it came (signed for the partner: this agent cannot alter it). Only while this
   * agent hears the coordinator itself.
   */
  relay(renew: RelayedRenew__Output, timeoutMs = 1500): Promise<HeartbeatAck__Output> {
    const state = this.state;
    if (state.phase !== 'connected' || !this.coordinatorReachable()) {
      return Promise.reject(new UnavailableError(`${this.options.machine} does not reach the coordinator either (${state.phase})`, { hint: 'the asker tries another partner' }));
    }
    const client = this.client(state.coordinator);
    return new Promise((resolve, reject) => {
      client.Relay({ renew, relayer: this.options.machine }, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, ack?: HeartbeatAck__Output) => {
        if (ack && !err) return resolve(ack);
        // the coordinator's refusal goes back as it is (FAILED_PRECONDITION: the asker says why); anything else is this hop's
        if (err?.code === grpc.status.FAILED_PRECONDITION) reject(new Error(err.details));
        else reject(new UnavailableError(`the coordinator did not take the relayed renewal: ${err?.details ?? 'no answer'}`));
      });
    });
  }

  /**
   * The agent is stopping its slots in order (system shutdown): the session, and with it the lease that lets a
   * stopped master flush its sync logs to its replica, stays up until they are stopped; but no desired state is
   * applied any more — one would start again what is being stopped.
   */
  freeze(): void {
    this.frozen = true;
  }

  /**
   * Ends the stream politely; the coordinator records the disconnection. `renewFirstMs`: the slots keep serving for
   * the agent started next, so a last heartbeat, saying `restarting`, goes first and its acknowledgement is awaited (at
   * most that long): the next agent inherits a lease renewed a moment ago, and longer by the coordinator's restart
   * hold — what it has to reconnect within before the fence fires.
   */
  async stop(renewFirstMs = 0): Promise<boolean> {
    this.stopping = true;
    // nothing is applied any more: a slot started now would only be left to the next agent half set up
    this.frozen = true;
    const renewed = renewFirstMs > 0 ? await this.renewNow(renewFirstMs) : false;
    this.state = { phase: 'stopped' };
    clearTimeout(this.retryTimer);
    this.reports.stop();
    clearTimeout(this.reapplyTimer);
    clearTimeout(this.welcomeTimer);
    clearInterval(this.heartbeatTimer);
    const stream = this.stream;
    this.stream = undefined;
    if (stream) {
      stream.end();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        stream.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.on('error', () => undefined);
      });
    }
    await this.applying;
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    return renewed;
  }

  private connect(): void {
    if (this.state.phase === 'stopped') return;
    const coordinator = this.options.coordinators[this.position.index]!;
    this.state = { phase: 'connecting', attempt: this.attempt, coordinator };
    this.openedAt = monotonicMs();
    this.graceUntil = 0;
    const client = this.client(coordinator);
    const stream = client.Session();
    this.stream = stream;
    stream.on('data', (message: CoordinatorMessage__Output) => this.onMessage(stream, message));
    stream.on('error', (err: grpc.ServiceError) => {
      const follower = notLeaderOf(err);
      this.onBroken(stream, err.details || err.message, follower ? { kind: 'not-leader', leader: follower.leader } : undefined);
    });
    stream.on('end', () => this.onBroken(stream, 'coordinator ended the session'));
    this.options.slots.reports().then(
      (slots) => {
        if (stream !== this.stream) return;
        stream.write({ hello: { machine: this.options.machine, agentVersion: SLOTCTL_VERSION, instanceId: this.instanceId, slots } });
        // counted from the hello: building the reports on a loaded host is not the coordinator's silence
        if (this.several) this.watchWelcome(stream, client);
      },
      // without a hello the coordinator never hears of this machine's slots: start over rather than sit on the stream
      (err: Error) => {
        this.log.error({ err: err.stack }, 'could not build the slot reports for the hello; reconnecting');
        this.onBroken(stream, `no hello: ${err.message}`);
      },
    );
  }

  /** Several addresses: one that does not answer the hello (see CONNECT_WAIT_MS) is left for the next. */
  private watchWelcome(stream: Stream, client: AgentClient): void {
    const check = (waited: number) => {
      if (stream !== this.stream || this.state.phase !== 'connecting') return;
      const connected = client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY;
      if (connected && waited < WELCOME_WAIT_MS) {
        this.welcomeTimer = setTimeout(() => setImmediate(check, WELCOME_WAIT_MS), WELCOME_WAIT_MS - waited);
        return;
      }
      this.onBroken(stream, connected ? `no welcome within ${WELCOME_WAIT_MS} ms` : `no connection within ${waited} ms`);
    };
    clearTimeout(this.welcomeTimer);
    // judged after the input already waiting (setImmediate): a welcome read late by a held-up thread still counts
    this.welcomeTimer = setTimeout(() => setImmediate(check, CONNECT_WAIT_MS), CONNECT_WAIT_MS);
  }

  /** When the next slot report goes (report-pacer.ts): a change of state at once, a backlog's size at most 5 times a second. */
  private readonly reports = new ReportPacer(() => {
    const stream = this.stream;
    if (!stream || this.state.phase !== 'connected') return;
    void this.options.slots
      .reports()
      .then((slots) => {
        if (stream === this.stream) stream.write({ reports: { slots } });
      })
      .catch((err: Error) => this.log.error({ err: err.stack }, 'could not build the slot reports'));
  });

  /** Slot state changed (`state`), or only a backlog's size or age (`backlog`): report soon, coalescing bursts. */
  reportSoon(what: ReportUrgency = 'state'): void {
    this.reports.soon(what);
  }

  sendEvent(slot: string, kind: string, message: string): void {
    if (this.stream && this.state.phase === 'connected') this.stream.write({ event: { slot, kind, message } });
  }

  /** A term older than the newest seen ends the session: its coordinator was deposed (it may not know yet). */
  private refusedTerm(stream: Stream, what: string, term: number): boolean {
    if (!isStaleTerm(this.newestTerm, term)) {
      this.noteTerm(term);
      return false;
    }
    const coordinator = this.options.coordinators[this.position.index];
    this.log.warn(
      { coordinator, term, newestTerm: this.newestTerm, hint: `if the cluster's etcd was rebuilt (its terms started again), stop the agent and remove "term" from ${this.options.applied.path}` },
      `${what} of leadership term ${term} refused: term ${this.newestTerm} is newer (a deposed leader); not applied, trying the next coordinator`,
    );
    this.onBroken(stream, `deposed leader (term ${term}, newest seen ${this.newestTerm})`);
    return true;
  }

  private noteTerm(term: number): void {
    if (term <= this.newestTerm) return;
    this.newestTerm = term;
    this.options.lease.term(term);
    // in memory it already counts; on disk for the next agent (a failed write is retried by the next one)
    this.options.applied.saveTerm(term).catch((err: unknown) => this.log.error({ err: describeError(err), term }, 'could not persist the leadership term'));
  }

  private onMessage(stream: Stream, message: CoordinatorMessage__Output): void {
    if (stream !== this.stream) return;
    this.lastHeardAt = monotonicMs();
    switch (message.body) {
      case 'welcome': {
        const w = message.welcome!;
        if (this.refusedTerm(stream, 'welcome', w.term)) return;
        clearTimeout(this.welcomeTimer);
        this.attempt = 0;
        this.position = { ...this.position, hops: 0 };
        this.lastAckAt = performance.now();
        const coordinator = this.options.coordinators[this.position.index]!;
        // counted from before the hello left: the coordinator's grace cannot end earlier than that
        this.graceUntil = w.restartGraceMs > 0 ? this.openedAt + w.restartGraceMs : 0;
        this.state = { phase: 'connected', since: Date.now(), heartbeatIntervalMs: w.heartbeatIntervalMs, leaseMs: w.leaseMs, coordinator, term: w.term };
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = setInterval(() => this.heartbeat(stream), w.heartbeatIntervalMs);
        // the lease thread's renewals go where this session is
        this.options.lease.session(coordinator, this.instanceId, w.heartbeatIntervalMs, w.leaseMs, this.newestTerm, w.relayKey, this.lastHeardAt);
        this.heartbeat(stream); // the lease starts now, not one interval later
        this.options.onWelcome?.(w.heartbeatIntervalMs, w.leaseMs);
        this.log.info({ coordinator, coordinatorId: w.coordinatorId, term: w.term, heartbeatIntervalMs: w.heartbeatIntervalMs, leaseMs: w.leaseMs, restartGraceMs: w.restartGraceMs }, 'connected to coordinator');
        return;
      }
      case 'ack': {
        const ack = message.ack!;
        // an older term's acknowledgement renews nothing
        if (this.refusedTerm(stream, 'heartbeat acknowledgement', ack.term)) return;
        this.lastAckAt = performance.now();
        const sent = this.sentAt.get(Number(ack.seq));
        const rttMs = sent === undefined ? undefined : monotonicMs() - sent.at;
        // against the configured lease: a hold's longer grant must not hide the lateness it is there for
        const configured = this.state.phase === 'connected' ? this.state.leaseMs : ack.leaseMs;
        if (rttMs !== undefined && rttMs > configured / 5) this.log.warn({ seq: Number(ack.seq), rttMs, leaseMs: ack.leaseMs }, 'heartbeat acknowledged late');
        for (const k of this.sentAt.keys()) if (k <= Number(ack.seq)) this.sentAt.delete(k);
        this.options.lease.acked(Number(ack.seq), ack.leaseMs);
        for (const w of this.ackWaiters) {
          if (w.seq <= Number(ack.seq)) {
            this.ackWaiters.delete(w);
            w.done(true);
          }
        }
        if (sent?.fenced && ack.desiredVersion) {
          // a desired state the coordinator wrote before this acknowledgement is applied first
          const version = ack.desiredVersion;
          void this.applying.then(() => {
            if (stream === this.stream) this.options.confirmed?.(version, version === this.appliedVersion);
          });
        }
        return;
      }
      case 'desired': {
        const desired = message.desired!;
        if (this.refusedTerm(stream, 'desired state', desired.term)) return;
        this.lastDesired = desired;
        this.options.onDesired(desired);
        this.applying = this.applying.then(() => this.apply(stream, desired));
        return;
      }
      default:
        this.log.warn({ body: message.body }, 'unknown message from coordinator ignored');
    }
  }

  /** The last heartbeat, saying `restarting`; resolves true once it (or a later one) is acknowledged, false after `timeoutMs` or off line. */
  private renewNow(timeoutMs: number): Promise<boolean> {
    const stream = this.stream;
    if (!stream || this.state.phase !== 'connected') return Promise.resolve(false);
    // the last one: no ordinary heartbeat after it
    clearInterval(this.heartbeatTimer);
    const seq = this.heartbeat(stream, true);
    return new Promise((resolve) => {
      const waiter = {
        seq,
        done: (acked: boolean) => {
          clearTimeout(timer);
          this.ackWaiters.delete(waiter);
          resolve(acked);
        },
      };
      const timer = setTimeout(() => waiter.done(false), timeoutMs);
      this.ackWaiters.add(waiter);
    });
  }

  private heartbeat(stream: Stream, restarting = false): number {
    if (stream !== this.stream) return 0;
    if (this.several) setImmediate(() => this.checkSilence(stream));
    const seq = ++this.seq;
    const at = monotonicMs();
    const fenced = this.options.fenced();
    this.sentAt.set(seq, { at, fenced });
    if (this.sentAt.size > 64) this.sentAt.delete(this.sentAt.keys().next().value!);
    const starting = !restarting && (this.options.starting?.() ?? false);
    this.options.lease.sent(seq, at, fenced, starting);
    stream.write({ heartbeat: { seq, peers: this.options.peerViews(), fenced, restarting, starting } });
    return seq;
  }

  /**
   * Several addresses: a coordinator silent for a whole lease, with the lease gone (renewals over fresh connections
   * failed too), has died without closing anything, and keepalive would take 15 s to say so; the next address may
   * lead by now. Judged after the input already waiting has been read (setImmediate), so that a main thread that was
   * held up does not take its own delay for silence; a lease still held (renewals get through) keeps the session.
   */
  private checkSilence(stream: Stream): void {
    if (stream !== this.stream || this.state.phase !== 'connected') return;
    const silentMs = monotonicMs() - this.lastHeardAt;
    if (silentMs < this.state.leaseMs || this.options.lease.coordinatorLeaseHeld()) return;
    this.onBroken(stream, `nothing heard for ${silentMs} ms and the lease is gone`);
  }

  /** This agent hears the coordinator now: connected, and an acknowledgement within two heartbeat intervals. */
  coordinatorReachable(): boolean {
    return this.state.phase === 'connected' && performance.now() - this.lastAckAt < 2 * this.state.heartbeatIntervalMs;
  }

  /**
   * Until when the coordinator this agent hears promotes nothing (it has just started), or undefined: partners that
   * have not been admitted yet may be promised that long, as if the coordinator were unreachable.
   */
  coordinatorGraceUntil(now = monotonicMs()): number | undefined {
    return this.coordinatorReachable() && now < this.graceUntil ? this.graceUntil : undefined;
  }

  private async apply(stream: Stream, desired: DesiredState__Output): Promise<void> {
    if (this.frozen) {
      this.log.info({ version: desired.version }, 'desired state not applied: the agent is stopping its slots');
      return;
    }
    const store = this.options.applied;
    const previous = store.current();
    const plan = planApply(previous, desired.slots);
    const withheld = this.options.withhold(plan, previous, desired);
    if (withheld.length) {
      // applied again (the last desired state, whatever it is by then) once the earliest promise has ended
      const wait = Math.max(0, Math.min(...withheld.map((w) => w.until)) - monotonicMs()) + 50;
      clearTimeout(this.reapplyTimer);
      this.reapplyTimer = setTimeout(() => {
        const last = this.lastDesired;
        if (last && stream === this.stream) this.applying = this.applying.then(() => this.apply(stream, last));
      }, wait);
      this.log.warn({ withheld }, 'promotion withheld: a failsafe promise to the old master machine still holds');
    }
    const changed = plan.results.filter((r) => r.result === 'CHANGED');
    const refused = plan.results.filter((r) => r.result === 'REFUSED');
    try {
      if (changed.length || plan.removed.length) await store.save(plan.next);
      // relayed renewals say which roles this agent runs (the coordinator refuses them once it wants others)
      this.options.lease.roles(appliedRolesDigest(plan.next));
    } catch (err) {
      this.log.error({ err: describeError(err), version: desired.version }, 'could not persist applied state; not applied');
      return;
    }
    for (const r of [...changed, ...refused]) {
      const slot = plan.next[r.slot!];
      const log = withContext(this.log, { slot: r.slot!, store: slot?.store, epoch: slot?.epoch });
      if (r.result === 'REFUSED') log.warn({ detail: r.detail }, 'desired slot refused');
      else log.info({ detail: r.detail }, 'desired slot applied');
    }
    for (const slot of plan.removed) withContext(this.log, { slot }).info('slot no longer desired on this machine');
    await this.options.slots.apply(plan, desired.slots);
    this.log.info(
      { version: desired.version, changed: changed.length, unchanged: plan.results.length - changed.length - refused.length, refused: refused.length, removed: plan.removed.length },
      'desired state applied',
    );
    this.appliedVersion = desired.version;
    if (stream !== this.stream) return;
    stream.write({ applied: { version: desired.version, slots: plan.results } });
    stream.write({ reports: { slots: await this.options.slots.reports() } });
  }

  /**
   * A fresh session with the same coordinator at once: its welcome is followed by the whole desired state. For a
   * desired state the acknowledgements say exists and that has not arrived (its send failed on the coordinator).
   */
  resync(why: string): void {
    const stream = this.stream;
    if (!stream || this.state.phase !== 'connected') return;
    this.log.warn({ why }, 'starting a fresh session with the coordinator');
    this.stream = undefined;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.welcomeTimer);
    this.options.lease.sessionEnded();
    stream.cancel();
    this.connect();
  }

  /** The coordinator is back (a partner reaches it): waiting out the reconnect backoff could cost the lease. */
  reconnectNow(): void {
    if (this.state.phase !== 'backoff') return;
    clearTimeout(this.retryTimer);
    this.log.info('a partner reaches the coordinator: reconnecting now');
    this.connect();
  }

  /**
   * The session ended (or never began): where the next one goes and when. A follower's answer sends the link to the
   * leader it names at once, or, during an election, to the next address soon; anything else to the next address
   * after the reconnect backoff. Only a welcome resets the backoff.
   */
  private onBroken(stream: Stream, why: string, outcome: TryOutcome = { kind: 'failed' }): void {
    if (stream !== this.stream || this.state.phase === 'stopped') return;
    this.stream = undefined;
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.welcomeTimer);
    this.options.lease.sessionEnded();
    stream.cancel();
    // an acknowledgement awaited on this stream will not come (one of a later session would not be the hold's)
    for (const w of [...this.ackWaiters]) w.done(false);
    if (this.stopping) return;
    const list = this.options.coordinators;
    const from = list[this.position.index]!;
    const next = nextCoordinator(list, this.position, outcome);
    this.position = { index: next.index, hops: next.hops };
    const retryInMs = next.wait === 'now' ? 0 : next.wait === 'soon' ? electionRetryDelay() : reconnectDelay(this.attempt++);
    const coordinator = list[next.index]!;
    this.state = { phase: 'backoff', attempt: this.attempt, retryInMs, lastError: why, coordinator };
    if (outcome.kind === 'not-leader' && next.wait !== 'backoff') this.log.info({ coordinator: from, next: coordinator, retryInMs, why: next.why }, 'coordinator is not the leader; trying another');
    else if (this.several) this.log.warn({ why, coordinator: from, next: coordinator, nextBecause: next.why, retryInMs, attempt: this.attempt }, 'session to coordinator lost; reconnecting');
    else this.log.warn({ why, retryInMs, attempt: this.attempt }, 'session to coordinator lost; reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), retryInMs);
  }
}
