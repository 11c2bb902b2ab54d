// The agent's link to the coordinator (its side of the Agent.Session stream; the coordinator calls its end a
// session): connect, say hello, heartbeat at the interval the coordinator asks for, apply
// every desired state that arrives, and reconnect with backoff whenever the stream breaks.
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import {
  SLOTCTL_VERSION,
  describeError,
  loadContract,
  withContext,
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
} from '@slotctl/shared';
import { planApply, type ApplyPlan, type AppliedSlots } from '../state/apply-plan.js';
import type { Withheld } from '../peer/failsafe.js';
import type { AppliedStore } from '../state/applied-store.js';
import type { MachineSlots } from '../machine/slots.js';
import { reconnectDelay } from './backoff.js';
import { monotonicMs } from '../lease/lease.js';
import type { LeaseKeeper } from '../lease/keeper.js';

export type LinkState =
  | { phase: 'idle' }
  | { phase: 'connecting'; attempt: number }
  | { phase: 'connected'; since: number; heartbeatIntervalMs: number; leaseMs: number }
  | { phase: 'backoff'; attempt: number; retryInMs: number; lastError: string }
  | { phase: 'stopped' };

type Stream = grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output>;

export interface LinkOptions {
  /** Mutual TLS: this machine's certificate; the coordinator must present a coordinator's. Undefined: --insecure. */
  certificates?: CertificateFiles;
  machine: string;
  coordinator: string;
  applied: AppliedStore;
  slots: MachineSlots;
  log: Logger;
  /** Counts the lease from what this link sends and what is acknowledged (on a thread of its own). */
  lease: Pick<LeaseKeeper, 'session' | 'sessionEnded' | 'sent' | 'acked'>;
  /** Every desired state, before it is applied (the partners and this machine's address come with it). */
  onDesired: (desired: DesiredState__Output) => void;
  /** Promotions this agent must not accept yet (failsafe promises); they are applied again when the promise ends. */
  withhold: (plan: ApplyPlan, previous: AppliedSlots, desired: DesiredState__Output) => Withheld[];
  /** Sent with every heartbeat. */
  peerViews: () => PeerView[];
  fenced: () => boolean;
}

export class CoordinatorLink {
  state: LinkState = { phase: 'idle' };
  readonly instanceId = randomUUID();
  private readonly client: AgentClient;
  private stream: Stream | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private seq = 0;
  private attempt = 0;
  private applying: Promise<void> = Promise.resolve();
  /** monotonic ms of the last heartbeat acknowledgement: what a lease is counted from. */
  lastAckAt = 0;
  private lastDesired: DesiredState__Output | undefined;
  private reapplyTimer: NodeJS.Timeout | undefined;
  /** Send times of recent heartbeats, for the acknowledgement's round trip in the logs. */
  private readonly sentAt = new Map<number, number>();
  /** When the current stream was opened, and until when its coordinator said it promotes nothing (monotonic ms). */
  private openedAt = 0;
  private graceUntil = 0;

  constructor(private readonly options: LinkOptions) {
    const { Agent } = loadContract().slotctl.v1;
    this.client = new Agent(options.coordinator, channelCredentials(options.certificates, expectIdentity('coordinator')), {
      ...TLS_CHANNEL_OPTIONS,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    });
  }

  private get log(): Logger {
    return this.options.log;
  }

  start(): void {
    this.connect();
  }

  /** Ends the stream politely; the coordinator records the disconnection. */
  async stop(): Promise<void> {
    this.state = { phase: 'stopped' };
    clearTimeout(this.retryTimer);
    clearTimeout(this.reportTimer);
    clearTimeout(this.reapplyTimer);
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
    this.client.close();
  }

  private connect(): void {
    if (this.state.phase === 'stopped') return;
    this.state = { phase: 'connecting', attempt: this.attempt };
    this.openedAt = monotonicMs();
    this.graceUntil = 0;
    const stream = this.client.Session();
    this.stream = stream;
    stream.on('data', (message: CoordinatorMessage__Output) => this.onMessage(stream, message));
    stream.on('error', (err: grpc.ServiceError) => this.onBroken(stream, err.details || err.message));
    stream.on('end', () => this.onBroken(stream, 'coordinator ended the session'));
    this.options.slots.reports().then(
      (slots) => {
        if (stream === this.stream) stream.write({ hello: { machine: this.options.machine, agentVersion: SLOTCTL_VERSION, instanceId: this.instanceId, slots } });
      },
      // without a hello the coordinator never hears of this machine's slots: start over rather than sit on the stream
      (err: Error) => {
        this.log.error({ err: err.stack }, 'could not build the slot reports for the hello; reconnecting');
        this.onBroken(stream, `no hello: ${err.message}`);
      },
    );
  }

  private reportTimer: NodeJS.Timeout | undefined;

  /** Slot state changed: report within a few ms, coalescing bursts (the backlog must be up within 200 ms). */
  reportSoon(): void {
    if (this.reportTimer) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      const stream = this.stream;
      if (!stream || this.state.phase !== 'connected') return;
      void this.options.slots
        .reports()
        .then((slots) => {
          if (stream === this.stream) stream.write({ reports: { slots } });
        })
        .catch((err: Error) => this.log.error({ err: err.stack }, 'could not build the slot reports'));
    }, 15);
  }

  sendEvent(slot: string, kind: string, message: string): void {
    if (this.stream && this.state.phase === 'connected') this.stream.write({ event: { slot, kind, message } });
  }

  private onMessage(stream: Stream, message: CoordinatorMessage__Output): void {
    if (stream !== this.stream) return;
    switch (message.body) {
      case 'welcome': {
        const w = message.welcome!;
        this.attempt = 0;
        this.lastAckAt = performance.now();
        // counted from before the hello left: the coordinator's grace cannot end earlier than that
        this.graceUntil = w.restartGraceMs > 0 ? this.openedAt + w.restartGraceMs : 0;
        this.state = { phase: 'connected', since: Date.now(), heartbeatIntervalMs: w.heartbeatIntervalMs, leaseMs: w.leaseMs };
        clearInterval(this.heartbeatTimer);
        this.heartbeatTimer = setInterval(() => this.heartbeat(stream), w.heartbeatIntervalMs);
        this.options.lease.session(this.options.coordinator, this.instanceId, w.heartbeatIntervalMs, w.leaseMs);
        this.heartbeat(stream); // the lease starts now, not one interval later
        this.log.info({ coordinatorId: w.coordinatorId, heartbeatIntervalMs: w.heartbeatIntervalMs, leaseMs: w.leaseMs, restartGraceMs: w.restartGraceMs }, 'connected to coordinator');
        return;
      }
      case 'ack': {
        this.lastAckAt = performance.now();
        const ack = message.ack!;
        const sent = this.sentAt.get(Number(ack.seq));
        const rttMs = sent === undefined ? undefined : monotonicMs() - sent;
        if (rttMs !== undefined && rttMs > ack.leaseMs / 5) this.log.warn({ seq: Number(ack.seq), rttMs, leaseMs: ack.leaseMs }, 'heartbeat acknowledged late');
        for (const k of this.sentAt.keys()) if (k <= Number(ack.seq)) this.sentAt.delete(k);
        this.options.lease.acked(Number(ack.seq), ack.leaseMs);
        return;
      }
      case 'desired': {
        const desired = message.desired!;
        this.lastDesired = desired;
        this.options.onDesired(desired);
        this.applying = this.applying.then(() => this.apply(stream, desired));
        return;
      }
      default:
        this.log.warn({ body: message.body }, 'unknown message from coordinator ignored');
    }
  }

  private heartbeat(stream: Stream): void {
    if (stream !== this.stream) return;
    const seq = ++this.seq;
    const at = monotonicMs();
    this.sentAt.set(seq, at);
    if (this.sentAt.size > 64) this.sentAt.delete(this.sentAt.keys().next().value!);
    this.options.lease.sent(seq, at);
    stream.write({ heartbeat: { seq, peers: this.options.peerViews(), fenced: this.options.fenced() } });
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
    if (stream !== this.stream) return;
    stream.write({ applied: { version: desired.version, slots: plan.results } });
    stream.write({ reports: { slots: await this.options.slots.reports() } });
  }

  /** The coordinator is back (a partner reaches it): waiting out the reconnect backoff could cost the lease. */
  reconnectNow(): void {
    if (this.state.phase !== 'backoff') return;
    clearTimeout(this.retryTimer);
    this.log.info('a partner reaches the coordinator: reconnecting now');
    this.connect();
  }

  private onBroken(stream: Stream, why: string): void {
    if (stream !== this.stream || this.state.phase === 'stopped') return;
    this.stream = undefined;
    clearInterval(this.heartbeatTimer);
    this.options.lease.sessionEnded();
    stream.cancel();
    const retryInMs = reconnectDelay(this.attempt++);
    this.state = { phase: 'backoff', attempt: this.attempt, retryInMs, lastError: why };
    this.log.warn({ why, retryInMs, attempt: this.attempt }, 'session to coordinator lost; reconnecting');
    this.retryTimer = setTimeout(() => this.connect(), retryInMs);
  }
}
