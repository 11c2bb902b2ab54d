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
  type Logger,
  type PeerAgent__Output,
  type PeerClient,
  type PeerView,
  type CertificateFiles,
  channelCredentials,
  expectIdentity,
  serverCredentials,
} from '@slotctl/shared';
import { monotonicMs } from '../lease/lease.js';
import { FailsafeLedger, PromiseBook, promiseFor } from './failsafe.js';
import type { MailboxGuidList } from '../cyrus/mailboxes.js';

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
  /** Answers a partner's recovery: the GUIDs of some mailboxes of one of this machine's slots. */
  guids: (slot: string, mailboxes: string[]) => Promise<MailboxGuidList[]>;
  /** A partner's recovery deleted clashing mailboxes on its slot: log a user sync of these users on our slot. */
  syncUsers: (slot: string, users: string[]) => Promise<void>;
  /** A partner reaches the coordinator: if this agent does not, its reconnect backoff is cut short. */
  partnerReachesCoordinator: () => void;
  /** A new failsafe deadline (undefined: none). */
  onFailsafe: (deadline: number | undefined) => void;
  log: Logger;
}

export class PeerLink {
  readonly promises = new PromiseBook();
  private readonly ledger: FailsafeLedger;
  private readonly heard = new Map<string, number>();
  private readonly clients = new Map<string, { address: string; client: PeerClient }>();
  private server: grpc.Server | undefined;
  private listening = '';
  private timer: NodeJS.Timeout | undefined;
  private failsafeHeld = false;
  /** Partners whose last answer promised more than was asked (warned about once). */
  private readonly overpromised = new Set<string>();

  constructor(private readonly options: PeerLinkOptions) {
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
      Confirm: (call: grpc.ServerUnaryCall<ConfirmRequest__Output, ConfirmReply>, cb: grpc.sendUnaryData<ConfirmReply>) => cb(null, this.answer(call.request)),
      MailboxGuids: (call: grpc.ServerUnaryCall<GuidsRequest__Output, GuidsReply>, cb: grpc.sendUnaryData<GuidsReply>) => {
        const { slot, mailboxes } = call.request;
        try {
          assertName(slot, 'slot');
        } catch (err) {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message }, null);
          return;
        }
        this.options.guids(slot, mailboxes).then(
          (found) => cb(null, { mailboxes: found }),
          (err: Error) => cb({ code: grpc.status.FAILED_PRECONDITION, details: err.message }, null),
        );
      },
      SyncUsers: (call: grpc.ServerUnaryCall<SyncUsersRequest__Output, SyncUsersReply>, cb: grpc.sendUnaryData<SyncUsersReply>) => {
        const { slot, users } = call.request;
        try {
          assertName(slot, 'slot');
        } catch (err) {
          cb({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message }, null);
          return;
        }
        this.options.syncUsers(slot, users).then(
          () => cb(null, {}),
          (err: Error) => cb({ code: grpc.status.FAILED_PRECONDITION, details: err.message }, null),
        );
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(target, serverCredentials(this.options.certificates), (err) => (err ? reject(err) : resolve())));
    this.server = server;
    this.listening = target;
    this.options.log.info({ listen: target }, 'serving Peer (failsafe confirmations) to partner agents');
  }

  /** Someone asks: a promise as `promiseFor` decides, written in the book that withholds promotions against it. */
  private answer(req: ConfirmRequest__Output): ConfirmReply {
    const machine = this.options.machine;
    try {
      assertName(req.machine, 'asking machine');
    } catch {
      return { machine, coordinatorReachable: true, promisedMs: 0 };
    }
    const now = monotonicMs();
    this.heard.set(req.machine, now);
    const reachable = this.options.coordinatorReachable();
    const ms = promiseFor(req, { reachable, graceUntil: this.options.coordinatorGraceUntil(), maxMs: this.options.promiseMs() }, now);
    if (ms > 0) this.promises.give(req.machine, now, ms);
    return { machine, coordinatorReachable: reachable, promisedMs: ms };
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
    for (const [m, c] of this.clients) {
      if (wanted.get(m) !== c.address) {
        c.client.close();
        this.clients.delete(m);
      }
    }
    const { Peer } = loadContract().slotctl.v1;
    for (const [m, address] of wanted) {
      if (!this.clients.has(m)) this.clients.set(m, { address, client: new Peer(address, channelCredentials(this.options.certificates, expectIdentity('agent', m)), { 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 }) });
    }
  }

  start(): void {
    this.timer = setInterval(() => this.round(), this.options.intervalMs);
    this.timer.unref();
  }

  private round(): void {
    for (const [machine, { client }] of this.clients) {
      const sentAt = monotonicMs();
      // this agent's own lease: what it asks for, and the most of any answer it believes
      const askedMs = this.options.promiseMs();
      client.Confirm({ machine: this.options.machine, promiseMs: askedMs, holds: this.options.holds() }, { deadline: Date.now() + Math.min(1000, this.options.intervalMs) }, (err: grpc.ServiceError | null, reply?: ConfirmReply__Output) => {
        if (err || !reply) return; // no answer: no promise; the last one runs out on its own
        this.heard.set(machine, monotonicMs());
        // said once per episode: an answer every second would fill the log
        const over = reply.promisedMs > askedMs;
        if (over && !this.overpromised.has(machine)) this.options.log.warn({ partner: machine, promisedMs: reply.promisedMs, askedMs }, 'partner promised longer than asked: believed only as long as this agent\'s lease');
        if (over) this.overpromised.add(machine);
        else this.overpromised.delete(machine);
        this.ledger.record(machine, { sentAt, reachable: reply.coordinatorReachable, promisedMs: reply.promisedMs, askedMs });
        if (reply.coordinatorReachable && !this.options.coordinatorReachable()) this.options.partnerReachesCoordinator();
        this.updateFailsafe();
      });
    }
    this.updateFailsafe();
  }

  private updateFailsafe(): void {
    const deadline = this.ledger.deadline(this.options.replicaPartners(), monotonicMs());
    if ((deadline !== undefined) !== this.failsafeHeld) {
      this.failsafeHeld = deadline !== undefined;
      this.options.log.warn({ partners: this.options.replicaPartners(), remainingMs: deadline === undefined ? undefined : deadline - monotonicMs() }, this.failsafeHeld ? 'failsafe: every replica partner confirms the coordinator is unreachable and promised; masters keep serving' : 'failsafe ended');
    }
    this.options.onFailsafe(deadline);
  }

  /** Recovery's verification: asks partner `machine` for the GUIDs of `mailboxes` of its slot `slot`. */
  askGuids(machine: string, slot: string, mailboxes: string[]): Promise<MailboxGuidList[]> {
    const c = this.clients.get(machine);
    if (!c) return Promise.reject(new Error(`machine ${machine} is not a partner of this one`));
    return new Promise((resolve, reject) =>
      c.client.MailboxGuids({ slot, mailboxes }, { deadline: Date.now() + 300_000 }, (err: grpc.ServiceError | null, reply?: GuidsReply__Output) =>
        err || !reply ? reject(new Error(`${machine}: ${err?.details ?? 'no answer'}`)) : resolve(reply.mailboxes),
      ),
    );
  }

  /** Asks partner `machine` to log a user-level sync of `users` on its slot `slot`. */
  askUserSync(machine: string, slot: string, users: string[]): Promise<void> {
    const c = this.clients.get(machine);
    if (!c) return Promise.reject(new Error(`machine ${machine} is not a partner of this one`));
    return new Promise((resolve, reject) =>
      c.client.SyncUsers({ slot, users }, { deadline: Date.now() + 60_000 }, (err: grpc.ServiceError | null) => (err ? reject(new Error(`${machine}: ${err.details}`)) : resolve())),
    );
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
