// Agent <-> agent: serves Peer.Confirm on this machine's address and asks every partner each interval. The answers
// feed the failsafe (masters keep serving while every replica partner confirms the coordinator is unreachable for it
// too) and the peer views the coordinator reads when a machine falls silent.
import * as grpc from '@grpc/grpc-js';
import {
  assertIp,
  assertName,
  loadContract,
  type ConfirmReply,
  type ConfirmReply__Output,
  type ConfirmRequest__Output,
  type GuidsReply,
  type GuidsReply__Output,
  type GuidsRequest__Output,
  type SyncUsersReply,
  type SyncUsersRequest__Output,
  type HeartbeatAck,
  type RelayedRenew__Output,
  UnavailableError,
  type Logger,
  type PeerAgent__Output,
  type PeerClient,
  type PeerView,
  type CertificateFiles,
  TLS_CHANNEL_OPTIONS,
  channelCredentials,
  expectIdentity,
  peerIdentity,
  LogThrottle,
  PermissionError,
  serverCredentials,
  SlotctlError,
  toGrpcError,
} from '@slotctl/shared';
import { monotonicMs } from '../lease/lease.js';
import { FailsafeLedger, PromiseBook, promiseFor } from './failsafe.js';
import { batches, checkPeerNames, peerCallProblem, WorkGate } from './trust.js';
import type { MailboxGuidList } from '../cyrus/mailboxes.js';
import type { RelayCandidate } from '../lease/relay.js';

/** Relayed renewals of one asker this agent passes on at once (it sends at most two; more is a partner gone wrong). */
const MAX_RELAYS_PER_ASKER = 4;

export interface PeerLinkOptions {
  /** Mutual TLS: this machine's certificate; a partner must present its own machine's. Undefined: --insecure. */
  certificates?: CertificateFiles;
  machine: string;
  port: number;
  /** How often partners are asked. */
  intervalMs: number;
  /** How long a promise lasts (the lease the coordinator grants), and the asker's safety margin on it. */
  promiseMs: () => number;
  marginMs: number;
  /** This agent's own view: does it hear the coordinator right now? */
  coordinatorReachable: () => boolean;
  /** Until when the coordinator it hears promotes nothing (just started), if it does (monotonic ms). */
  coordinatorGraceUntil: () => number | undefined;
  /** May this machine's masters serve now (lease or failsafe)? Partners promise only to one that may. */
  holds: () => boolean;
  /** The machines holding the replicas of this machine's masters (whose promises the failsafe needs). */
  replicaPartners: () => string[];
  /** The machine holding the other slot of `slot`'s store (desired state): the only caller asked about that slot. */
  slotPartner: (slot: string) => string | undefined;
  /** Answers a partner's recovery: the GUIDs of some mailboxes of one of this machine's slots. */
  guids: (slot: string, mailboxes: string[]) => Promise<MailboxGuidList[]>;
  /** A partner's recovery deleted clashing mailboxes on its slot: log a user sync of these users on our slot. */
  syncUsers: (slot: string, users: string[]) => Promise<void>;
  /** A partner reaches the coordinator: if this agent does not, its reconnect backoff is cut short. */
  partnerReachesCoordinator: () => void;
  /** A new failsafe deadline (undefined: none). */
  onFailsafe: (deadline: number | undefined) => void;
  /** Passes a partner's renewal on to the coordinator (Agent.Relay) within `timeoutMs`; rejects when this agent does not reach it. */
  relay: (renew: RelayedRenew__Output, timeoutMs: number) => Promise<HeartbeatAck>;
  /** The partners this agent's own renewals may be relayed through changed (those that reach the coordinator first). */
  onRelayers: (candidates: RelayCandidate[]) => void;
  log: Logger;
}

export class PeerLink {
  readonly promises = new PromiseBook();
  private readonly ledger: FailsafeLedger;
  private readonly options: PeerLinkOptions;
  /** When each partner was last heard: partners only, so that no name a caller makes up can grow it. */
  private readonly heard = new Map<string, number>();
  /** The machines sharing a store with this one, from the last desired state: the only callers served. */
  private partners: ReadonlySet<string> = new Set();
  /** Requests that run Cyrus tools: a few at a time, whatever the partners send. */
  private readonly work = new WorkGate();
  private readonly refusals = new LogThrottle();
  private readonly clients = new Map<string, { address: string; client: PeerClient }>();
  private server: grpc.Server | undefined;
  private listening = '';
  private timer: NodeJS.Timeout | undefined;
  private failsafeHeld = false;
  /** Whether each partner's last answer said it reaches the coordinator, and when it came. */
  private readonly reaches = new Map<string, { reachable: boolean; at: number }>();
  private relaysInFlight = new Map<string, number>();
  private lastRelayers = '';
  /** Partners whose last answer promised more than was asked (warned about once). */
  private readonly overpromised = new Set<string>();

  constructor(options: PeerLinkOptions) {
    this.options = { ...options };
    this.ledger = new FailsafeLedger(options.marginMs);
  }

  /** (Re)binds the Peer service on this machine's address from the desired state. */
  async listen(address: string): Promise<void> {
    assertIp(address, 'machine address');
    const target = `${address}:${this.options.port}`;
    if (target === this.listening) return;
    this.server?.forceShutdown();
    const server = new grpc.Server();
    server.addService(loadContract().slotctl.v1.Peer.service, {
      Confirm: this.unary<ConfirmRequest__Output, ConfirmReply>('Confirm', (req) => this.answer(req), (req) => req.machine),
      MailboxGuids: this.unary<GuidsRequest__Output, GuidsReply>('MailboxGuids', (req, call) => {
        assertName(req.slot, 'slot');
        this.admitForSlot(call, 'MailboxGuids', req.slot);
        checkPeerNames('mailbox', req.mailboxes);
        return this.work.run(async () => ({ mailboxes: await this.options.guids(req.slot, req.mailboxes) }), () => !call.cancelled);
      }),
      Relay: this.unary<RelayedRenew__Output, HeartbeatAck>('Relay', (req, call) => this.passOn(req, call.getDeadline()), (req) => req.machine),
      SyncUsers: this.unary<SyncUsersRequest__Output, SyncUsersReply>('SyncUsers', (req, call) => {
        assertName(req.slot, 'slot');
        this.admitForSlot(call, 'SyncUsers', req.slot);
        checkPeerNames('user', req.users);
        return this.work.run(async () => (await this.options.syncUsers(req.slot, req.users), {}), () => !call.cancelled);
      }),
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(target, serverCredentials(this.options.certificates), (err) => (err ? reject(err) : resolve())));
    this.server = server;
    this.listening = target;
    this.options.log.info({ listen: target }, 'serving Peer (failsafe confirmations) to partner agents');
  }

  /**
   * One Peer RPC: the caller is admitted first (see `admit`), then `handle` answers. A named error becomes its
   * status (PERMISSION_DENIED, INVALID_ARGUMENT, UNAVAILABLE); any other failure (the slot is not here, a Cyrus
   * tool failed) is FAILED_PRECONDITION with its message, as the asker reports it.
   */
  private unary<Req, Rep>(rpc: string, handle: (req: Req, call: grpc.ServerUnaryCall<Req, Rep>) => Rep | Promise<Rep>, claimed?: (req: Req) => string) {
    const status = (err: unknown): Partial<grpc.StatusObject> =>
      err instanceof SlotctlError ? toGrpcError(err) : { code: grpc.status.FAILED_PRECONDITION, details: err instanceof Error ? err.message : String(err) };
    return (call: grpc.ServerUnaryCall<Req, Rep>, cb: grpc.sendUnaryData<Rep>): void => {
      let reply: Promise<Rep>;
      try {
        this.admit(call, rpc, claimed?.(call.request));
        reply = Promise.resolve(handle(call.request, call));
      } catch (err) {
        cb(status(err), null);
        return;
      }
      reply.then((r) => cb(null, r), (err: unknown) => cb(status(err), null));
    };
  }

  /** A question about one slot is answered only to the machine of that slot's store partner (with mutual TLS). */
  private admitForSlot(call: grpc.ServerUnaryCall<unknown, unknown>, rpc: string, slot: string): void {
    if (!this.options.certificates) return;
    const caller = peerIdentity(call)?.name;
    const partner = this.options.slotPartner(slot);
    if (caller !== undefined && partner === caller) return;
    throw new PermissionError(`Peer.${rpc} refused by ${this.options.machine}: slot ${slot} ${partner ? `shares its store with ${partner}, not with ${caller}` : 'is not a slot of this machine in the desired state'}`, {
      hint: 'a partner asks only about the slot of the store it shares with this machine',
    });
  }

  /**
   * With mutual TLS, only the agent of a partner machine is served, speaking for itself; a refusal is logged (once
   * per caller and RPC every 10 s) and answered PERMISSION_DENIED. --insecure has no identity to check: served.
   */
  private admit(call: grpc.ServerUnaryCall<unknown, unknown>, rpc: string, claimed: string | undefined): void {
    if (!this.options.certificates) return;
    const caller = peerIdentity(call);
    const problem = peerCallProblem(caller, this.options.machine, this.partners, claimed);
    if (!problem) return;
    const message = `Peer.${rpc} refused by ${this.options.machine}: ${problem}`;
    if (this.refusals.allow(`${caller?.role}/${caller?.name}/${rpc}`, monotonicMs())) {
      this.options.log.warn({ rpc, caller: caller ?? null, claimed, peer: call.getPeer(), partners: [...this.partners] }, message);
    }
    throw new PermissionError(message, {
      hint: `only the agents of machines sharing a store with ${this.options.machine} (in the coordinator's desired state) may call it, each as itself`,
    });
  }

  /** Someone asks: a promise as `promiseFor` decides, written in the book that withholds promotions against it. */
  private answer(req: ConfirmRequest__Output): ConfirmReply {
    const machine = this.options.machine;
    const reachable = this.options.coordinatorReachable();
    // a promise binds only against a partner, and an unknown name must not grow the book or `heard` (--insecure)
    if (!this.partners.has(req.machine)) {
      if (this.refusals.allow(`confirm/${req.machine.slice(0, 64)}`, monotonicMs())) this.options.log.warn({ asker: req.machine.slice(0, 64) }, 'Confirm from a machine that shares no store with this one: no promise');
      return { machine, coordinatorReachable: reachable, promisedMs: 0 };
    }
    const now = monotonicMs();
    this.heard.set(req.machine, now);
    const ms = promiseFor(req, { reachable, graceUntil: this.options.coordinatorGraceUntil(), maxMs: this.options.promiseMs() }, now);
    if (ms > 0) this.promises.give(req.machine, now, ms);
    return { machine, coordinatorReachable: reachable, promisedMs: ms };
  }

  /**
   * A partner cut from the coordinator asks this agent to pass its renewal on. Only a partner, only for itself
   * (admit checks the certificate; --insecure at least the name), a few at a time; what comes back is signed for the
   * asker, so this agent can neither forge nor alter it.
   */
  private async passOn(req: RelayedRenew__Output, deadline: grpc.Deadline): Promise<HeartbeatAck> {
    const asker = req.machine;
    if (!this.partners.has(asker)) throw new PermissionError(`Peer.Relay refused by ${this.options.machine}: ${asker.slice(0, 64)} shares no store with it`);
    const n = this.relaysInFlight.get(asker) ?? 0;
    if (n >= MAX_RELAYS_PER_ASKER) throw new UnavailableError(`${n} relayed renewals of ${asker} already wait for the coordinator`, { hint: 'wait for their answers' });
    this.relaysInFlight.set(asker, n + 1);
    this.heard.set(asker, monotonicMs());
    try {
      // within the asker's own deadline (less a moment for the answer's way back), at most 2 s
      const left = (deadline instanceof Date ? deadline.getTime() : Number(deadline)) - Date.now() - 50;
      return await this.options.relay(req, Math.max(100, Math.min(2000, Number.isFinite(left) ? left : 1500)));
    } finally {
      const left = (this.relaysInFlight.get(asker) ?? 1) - 1;
      if (left > 0) this.relaysInFlight.set(asker, left);
      else this.relaysInFlight.delete(asker);
    }
  }

  /** The partners this agent may relay through, those whose last answer (recent) says they reach the coordinator first. */
  relayCandidates(now = monotonicMs()): RelayCandidate[] {
    const fresh = 3 * this.options.intervalMs;
    const out = [...this.clients].map(([machine, c]) => {
      const r = this.reaches.get(machine);
      return { machine, address: c.address, reaches: Boolean(r && r.reachable && now - r.at < fresh) };
    });
    return out.sort((a, b) => Number(b.reaches) - Number(a.reaches) || a.machine.localeCompare(b.machine));
  }

  private tellRelayers(): void {
    const candidates = this.relayCandidates();
    const said = JSON.stringify(candidates);
    if (said === this.lastRelayers) return;
    this.lastRelayers = said;
    this.options.onRelayers(candidates);
  }

  /** The partners to ask, from the desired state. */
  setPartners(peers: readonly PeerAgent__Output[]): void {
    const wanted = new Map<string, string>();
    for (const p of peers) {
      try {
        assertName(p.machine, 'partner machine');
        assertIp(p.address, `address of partner ${p.machine}`);
        wanted.set(p.machine, `${p.address}:${this.options.port}`);
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message }, 'partner ignored');
      }
    }
    this.partners = new Set(wanted.keys());
    for (const m of this.heard.keys()) if (!this.partners.has(m)) this.heard.delete(m);
    for (const m of this.reaches.keys()) if (!this.partners.has(m)) this.reaches.delete(m);
    for (const m of this.overpromised) if (!this.partners.has(m)) this.overpromised.delete(m);
    this.ledger.retain(this.partners);
    for (const [m, c] of this.clients) {
      if (wanted.get(m) !== c.address) {
        c.client.close();
        this.clients.delete(m);
      }
    }
    const { Peer } = loadContract().slotctl.v1;
    for (const [m, address] of wanted) {
      if (!this.clients.has(m)) this.clients.set(m, { address, client: new Peer(address, channelCredentials(this.options.certificates, expectIdentity('agent', m)), { ...TLS_CHANNEL_OPTIONS, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 }) });
    }
    this.tellRelayers();
  }

  start(): void {
    this.timer = setInterval(() => this.round(), this.options.intervalMs);
    this.timer.unref();
  }

  /**
   * The coordinator's lease and interval (its welcome): partners are asked every `intervalMs`, and their promises
   * believed until `marginMs` before they end (lease-timing.ts), so that a short lease keeps a failsafe continuous.
   */
  setTimings(intervalMs: number, marginMs: number): void {
    this.ledger.marginMs = marginMs;
    if (intervalMs === this.options.intervalMs) return;
    this.options.intervalMs = intervalMs;
    if (!this.timer) return;
    clearInterval(this.timer);
    this.start();
  }

  private round(): void {
    for (const [machine, { client }] of this.clients) {
      const sentAt = monotonicMs();
      // this agent's own lease: what it asks for, and the most of any answer it believes
      const askedMs = this.options.promiseMs();
      client.Confirm({ machine: this.options.machine, promiseMs: askedMs, holds: this.options.holds() }, { deadline: Date.now() + 1000 }, (err: grpc.ServiceError | null, reply?: ConfirmReply__Output) => {
        if (err || !reply) return; // no answer: no promise; the last one runs out on its own
        this.heard.set(machine, monotonicMs());
        this.reaches.set(machine, { reachable: reply.coordinatorReachable, at: monotonicMs() });
        // said once per episode: an answer every second would fill the log
        const over = reply.promisedMs > askedMs;
        if (over && !this.overpromised.has(machine)) this.options.log.warn({ partner: machine, promisedMs: reply.promisedMs, askedMs }, 'partner promised longer than asked: believed only as long as this agent\'s lease');
        if (over) this.overpromised.add(machine);
        else this.overpromised.delete(machine);
        this.ledger.record(machine, { sentAt, reachable: reply.coordinatorReachable, promisedMs: reply.promisedMs, askedMs });
        if (reply.coordinatorReachable && !this.options.coordinatorReachable()) this.options.partnerReachesCoordinator();
        this.updateFailsafe();
        this.tellRelayers();
      });
    }
    this.updateFailsafe();
    this.tellRelayers();
  }

  private updateFailsafe(): void {
    const deadline = this.ledger.deadline(this.options.replicaPartners(), monotonicMs());
    if ((deadline !== undefined) !== this.failsafeHeld) {
      this.failsafeHeld = deadline !== undefined;
      this.options.log.warn({ partners: this.options.replicaPartners(), remainingMs: deadline === undefined ? undefined : deadline - monotonicMs() }, this.failsafeHeld ? 'failsafe: every replica partner confirms the coordinator is unreachable and promised; masters keep serving' : 'failsafe ended');
    }
    this.options.onFailsafe(deadline);
  }

  /** Recovery's verification: asks partner `machine` for the GUIDs of `mailboxes` of its slot `slot`, in batches the partner serves. */
  async askGuids(machine: string, slot: string, mailboxes: string[]): Promise<MailboxGuidList[]> {
    const client = this.partnerClient(machine);
    const out: MailboxGuidList[] = [];
    for (const batch of batches(mailboxes)) {
      const found = await new Promise<MailboxGuidList[]>((resolve, reject) =>
        client.MailboxGuids({ slot, mailboxes: batch }, { deadline: Date.now() + 300_000 }, (err: grpc.ServiceError | null, reply?: GuidsReply__Output) =>
          err || !reply ? reject(new Error(`${machine}: ${err?.details ?? 'no answer'}`)) : resolve(reply.mailboxes),
        ),
      );
      out.push(...found);
    }
    return out;
  }

  /** Asks partner `machine` to log a user-level sync of `users` on its slot `slot`, in batches the partner serves. */
  async askUserSync(machine: string, slot: string, users: string[]): Promise<void> {
    const client = this.partnerClient(machine);
    for (const batch of batches(users)) {
      await new Promise<void>((resolve, reject) =>
        client.SyncUsers({ slot, users: batch }, { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null) => (err ? reject(new Error(`${machine}: ${err.details}`)) : resolve())),
      );
    }
  }

  private partnerClient(machine: string): PeerClient {
    const c = this.clients.get(machine);
    if (!c) throw new Error(`machine ${machine} is not a partner of this one`);
    return c.client;
  }

  /** How recently each partner was heard (either direction), for heartbeats. */
  views(): PeerView[] {
    const now = monotonicMs();
    return [...this.clients.keys()].map((machine) => {
      const t = this.heard.get(machine);
      return t === undefined ? { machine, heard: false, lastHeardMsAgo: 0 } : { machine, heard: true, lastHeardMsAgo: Math.min(0xffffffff, now - t) };
    });
  }

  stop(): void {
    clearInterval(this.timer);
    for (const c of this.clients.values()) c.client.close();
    this.server?.forceShutdown();
  }
}
