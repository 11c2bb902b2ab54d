// The lease thread's side of a heartbeat relay: a renewal signed with the session's relay key goes to a partner's
// Peer.Relay, which passes it to the coordinator (Agent.Relay); the acknowledgement comes back signed with the same
// key, and only one whose signature holds counts. Connections to partners are kept (one TLS handshake each, not one
// per relay) and follow the partners the main thread names.
import * as grpc from '@grpc/grpc-js';
import { TLS_CHANNEL_OPTIONS, ackMac, heartbeatMac, loadContract, macEqual, type HeartbeatAck__Output, type Logger, type PeerClient } from '@slotctl/shared';
import { nextRelayer, type RelayCandidate } from './relay.js';

export interface RelaySession {
  instanceId: string;
  key: string;
  /** When the session's welcome was read (monotonic ms). */
  welcomedAt: number;
}

/** Why a relayed renewal did not renew: no answer, the coordinator refused it, or the answer is not the coordinator's. */
export type RelayFailure = 'unanswered' | 'refused' | 'forged';

export interface RelayedAckResult {
  seq: number;
  leaseMs: number;
  term: number;
}

export class RelaySender {
  private readonly clients = new Map<string, { address: string; client: PeerClient }>();
  private candidates: RelayCandidate[] = [];
  /** The partner that relayed last (kept while it works). */
  preferred: string | undefined;
  /** Partners whose last relay failed: tried again only when none other is left, or once they answer. */
  private readonly failed = new Set<string>();
  private readonly busy = new Set<string>();
  lastRelayAt = -Infinity;

  constructor(
    private readonly options: {
      machine: string;
      credentials: (partner: string) => grpc.ChannelCredentials;
      log: Logger;
    },
  ) {}

  get inFlight(): number {
    return this.busy.size;
  }

  setCandidates(candidates: RelayCandidate[]): void {
    this.candidates = candidates;
    const wanted = new Map(candidates.map((c) => [c.machine, c.address]));
    for (const [m, c] of this.clients) {
      if (wanted.get(m) !== c.address) {
        c.client.close();
        this.clients.delete(m);
      }
    }
    for (const m of this.failed) if (!wanted.has(m)) this.failed.delete(m);
  }

  private client(c: RelayCandidate): PeerClient {
    let kept = this.clients.get(c.machine);
    if (!kept) {
      const { Peer } = loadContract().slotctl.v1;
      kept = { address: c.address, client: new Peer(c.address, this.options.credentials(c.machine), { ...TLS_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1, 'grpc.initial_reconnect_backoff_ms': 200, 'grpc.max_reconnect_backoff_ms': 1000 }) };
      this.clients.set(c.machine, kept);
    }
    return kept.client;
  }

  /** A partner to relay through now (none: every one is busy, or there is none). */
  ready(): boolean {
    return nextRelayer(this.candidates, this.preferred, this.failed, this.busy) !== undefined;
  }

  /**
   * Relays renewal `seq` (sent at `now`) through the next partner; `done` gets the verified acknowledgement, or why
   * there is none, and the partner it went through. False: no partner to try (see ready()).
   */
  send(session: RelaySession, r: { seq: number; rolesDigest: string; fenced: boolean }, now: number, timeoutMs: number, done: (ack: RelayedAckResult | undefined, via: string, failure?: { kind: RelayFailure; why: string }) => void): boolean {
    const via = nextRelayer(this.candidates, this.preferred, this.failed, this.busy);
    if (!via) return false;
    this.lastRelayAt = now;
    this.busy.add(via.machine);
    const seq = r.seq;
    const renew = { machine: this.options.machine, instanceId: session.instanceId, seq, rolesDigest: r.rolesDigest, fenced: r.fenced, sinceWelcomeMs: Math.max(0, Math.round(now - session.welcomedAt)) };
    const mac = heartbeatMac(session.key, renew);
    this.client(via).Relay({ ...renew, mac }, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, ack?: HeartbeatAck__Output) => {
      this.busy.delete(via.machine);
      const fail = (kind: RelayFailure, why: string) => {
        this.failed.add(via.machine);
        if (this.preferred === via.machine) this.preferred = undefined;
        done(undefined, via.machine, { kind, why });
      };
      if (err || !ack) return fail(err?.code === grpc.status.FAILED_PRECONDITION ? 'refused' : 'unanswered', err?.details || err?.message || 'no answer');
      const expected = ackMac(session.key, { machine: this.options.machine, instanceId: session.instanceId, seq: Number(ack.seq), leaseMs: ack.leaseMs, term: Number(ack.term) });
      if (Number(ack.seq) !== seq || !macEqual(expected, ack.mac)) return fail('forged', "the acknowledgement is not signed with this session's relay key (altered or forged on the way): not believed");
      this.failed.delete(via.machine);
      this.preferred = via.machine;
      done({ seq, leaseMs: ack.leaseMs, term: Number(ack.term) }, via.machine);
    });
    return true;
  }

  close(): void {
    for (const c of this.clients.values()) c.client.close();
    this.clients.clear();
  }
}
