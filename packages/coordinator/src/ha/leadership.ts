// Leadership among coordinators, on etcd: the leader is whoever created PREFIX/leader, a key attached to its own
// etcd lease. Its term is the revision at which it created the key (etcd revisions only grow, so a later leader's
// term is larger); every write of the etcd backend is conditioned on that key still having that create revision.
//
// The lease is kept alive here, so that `until` is known: a keepalive sent at `s` and
// answered with a TTL of T means etcd cannot expire the lease before s + T (it counts T from when it received the
// request, after s). `until` is that, less a margin for the two clocks' rates. Past `until` this coordinator may no
// longer lead; it grants agents no lease reaching beyond `until` (AgentSessions), and stops acting.
//
// One keepalive round may take several attempts: while none has answered, another is sent every little while
// (keepAliveTiming), each to a member the client chooses afresh, and the first answer counts (`until` from when that
// one was sent). A member that is hung (its connection open, nothing answering) or still electing a leader of its
// own holds the attempts sent to it, not the lease.
import type { Etcd3, IKeyValue } from 'etcd3';
import type { Logger } from '@slotctl/shared';
import type { EtcdKeys } from '../db/etcd/keys.js';

export interface LeaderRecord {
  id: string;
  /** Where agents and slotctl reach it (host:port). */
  address: string;
  since: string;
}

export interface LeaderSeen extends LeaderRecord {
  term: number;
}

export interface LeadershipOptions {
  client: Etcd3;
  keys: EtcdKeys;
  me: LeaderRecord;
  /** The etcd lease's TTL (whole seconds, at least 2: etcd's minimum is about 1.5 s with its default timings). */
  ttlSeconds: number;
  log: Logger;
}

const CALL_MS = 1000;
/** How often a coordinator that does not lead looks at the leader key: a new leader within this of the old one's lease. */
const CAMPAIGN_POLL_MS = 150;
/** After a failed keepalive attempt, the next one this soon. */
const KEEPALIVE_RETRY_MS = 100;

/** One keepalive attempt waits at most `attemptMs` for its answer; while none has answered, another goes every `hedgeMs`. */
export function keepAliveTiming(ttlMs: number): { attemptMs: number; hedgeMs: number } {
  return { attemptMs: Math.min(1000, Math.floor(ttlMs / 5)), hedgeMs: Math.max(100, Math.floor(ttlMs / 20)) };
}

/** Rate difference between this host's clock and etcd's, and scheduling: taken off every lease. */
export function leadershipMargin(ttlMs: number): number {
  return Math.round(ttlMs * 0.05) + 100;
}

export class Leadership {
  private leaseId: string | undefined;
  private untilMs = 0;
  private keepTimer: NodeJS.Timeout | undefined;
  /** Fires at `until` (moved on by each keepalive): the end is noticed on time even if a keepalive call hangs. */
  private deadlineTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private term = 0;
  private readonly lostFns: ((why: string) => void)[] = [];
  private lostSaid = false;
  private readonly ttlMs: number;

  constructor(private readonly o: LeadershipOptions) {
    this.ttlMs = o.ttlSeconds * 1000;
  }

  /** performance.now() until which this coordinator surely holds its lease (0: none). */
  until(): number {
    return this.untilMs;
  }

  /** Called once if leadership, once won, is lost (lease expired, etcd unreachable past `until`, key gone). */
  onLost(fn: (why: string) => void): void {
    this.lostFns.push(fn);
  }

  /**
   * Waits until this coordinator leads; returns its term. While another leads, `onWaiting` hears who (undefined: no
   * one, or etcd unreachable). The leader key is watched by reading it (a read is served without a raft proposal);
   * only when it is gone does this try to create it. Rejects when stopped.
   */
  async campaign(onWaiting?: (leader: LeaderSeen | undefined) => void): Promise<number> {
    const kv = this.o.client.kv;
    const key = Buffer.from(this.o.keys.leader);
    for (;;) {
      if (this.stopped) throw new Error('stopped');
      try {
        const current = await this.leader();
        if (current) {
          onWaiting?.(current);
        } else {
          if (!this.leaseId || performance.now() > this.untilMs) await this.grant();
          const value = Buffer.from(JSON.stringify({ ...this.o.me, since: new Date().toISOString() }));
          const res = await kv.txn(
            { compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }], success: [{ request_put: { key, value, lease: this.leaseId } }], failure: [] },
            { deadline: Date.now() + CALL_MS },
          );
          if (res.succeeded) {
            this.term = Number(res.header.revision);
            this.o.log.info({ term: this.term }, 'elected leader coordinator');
            this.watchDeadline();
            return this.term;
          }
        }
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'campaign: etcd unreachable; trying again');
        onWaiting?.(undefined);
      }
      await sleep(CAMPAIGN_POLL_MS);
    }
  }

  /** The leader etcd names now (undefined: none, or etcd unreachable). */
  async leader(): Promise<LeaderSeen | undefined> {
    const res = await this.o.client.kv.range({ key: Buffer.from(this.o.keys.leader) }, { deadline: Date.now() + CALL_MS });
    return res.kvs[0] ? seen(res.kvs[0]) : undefined;
  }

  /** Gives leadership up (a clean stop): the key deleted if still ours, the lease revoked. */
  async resign(): Promise<void> {
    this.stopped = true;
    if (this.keepTimer) clearTimeout(this.keepTimer);
    clearTimeout(this.deadlineTimer);
    const id = this.leaseId;
    this.leaseId = undefined;
    this.untilMs = 0;
    try {
      if (this.term) {
        const key = Buffer.from(this.o.keys.leader);
        await this.o.client.kv.txn({ compare: [{ key, target: 'Create', result: 'Equal', create_revision: this.term }], success: [{ request_delete_range: { key } }], failure: [] }, { deadline: Date.now() + CALL_MS });
      }
      if (id) await this.o.client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + CALL_MS });
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not resign cleanly; the lease expires on its own');
    }
  }

  private async grant(): Promise<void> {
    const sentAt = performance.now();
    const res = await this.o.client.leaseClient.leaseGrant({ TTL: this.o.ttlSeconds }, { deadline: Date.now() + CALL_MS });
    this.leaseId = res.ID;
    this.untilMs = Math.max(this.untilMs, sentAt + Number(res.TTL) * 1000 - leadershipMargin(this.ttlMs));
    this.scheduleKeepAlive();
  }

  private scheduleKeepAlive(): void {
    if (this.keepTimer) clearTimeout(this.keepTimer);
    // often: every agent lease this leader grants ends by `until`, which a keepalive moves
    this.keepTimer = setTimeout(() => void this.keepAlive(), Math.max(100, Math.floor(this.ttlMs / 8)));
  }

  /** One keepalive round (attempts until one answers); reschedules itself. Once leader, a lapse is the end of the leadership. */
  private async keepAlive(): Promise<void> {
    if (this.stopped || !this.leaseId) return;
    const id = this.leaseId;
    // bound to this lease: a round still running when a new lease is granted (campaign) neither ends nor extends it
    const mine = () => this.leaseId === id;
    let failures = 0;
    let lastError = '';
    const started = performance.now();
    const timing = keepAliveTiming(this.ttlMs);
    const said = () => ({ failures, err: lastError, tookMs: Math.round(performance.now() - started), leftMs: Math.round(this.untilMs - performance.now()) });
    try {
      const { ttl, sentAt } = await keepAliveRound(this.o.client, id, timing, () => (mine() ? this.untilMs : 0), (err) => {
        lastError = err.message;
        failures++;
      });
      if (this.stopped || !mine()) return; // lost or replaced meanwhile: a late answer brings nothing back
      // a dead member refuses a third of the attempts for as long as it is dead: said quietly unless it cost time
      if (failures) this.o.log[performance.now() - started > timing.attemptMs ? 'warn' : 'debug'](said(), 'etcd lease keepalive answered after failed attempts');
      if (ttl <= 0) {
        this.leaseId = undefined;
        this.lose('the etcd lease expired');
        return;
      }
      this.untilMs = Math.max(this.untilMs, sentAt + ttl * 1000 - leadershipMargin(this.ttlMs));
    } catch {
      if (this.stopped || !mine()) return; // resigned, lost or replaced meanwhile: nothing more to say
      this.o.log.warn(said(), 'etcd lease keepalive: no attempt answered before the lease ran out');
    }
    if (this.term && performance.now() > this.untilMs) {
      this.lose('etcd did not renew the leadership lease in time');
      return;
    }
    this.scheduleKeepAlive();
  }

  /**
   * Checks at `until` whether a keepalive moved it on; if not, leadership is over. A keepalive that hangs (opening
   * its stream to an unreachable etcd has no deadline of its own) must not leave the leader believing longer than it
   * may: acting is gated on `until` anyway, but stopping — and saying so — happens here, on time.
   */
  private watchDeadline(): void {
    clearTimeout(this.deadlineTimer);
    if (this.stopped || !this.term) return;
    this.deadlineTimer = setTimeout(() => {
      if (this.stopped) return;
      if (performance.now() > this.untilMs) this.lose('etcd did not renew the leadership lease in time');
      else this.watchDeadline();
    }, Math.max(0, this.untilMs - performance.now()) + 5);
  }

  /** Leadership ends now (called by the backend when a write is refused, too). */
  lose(why: string): void {
    this.untilMs = 0;
    if (this.lostSaid || !this.term) return;
    this.lostSaid = true;
    this.stopped = true;
    if (this.keepTimer) clearTimeout(this.keepTimer);
    clearTimeout(this.deadlineTimer);
    this.o.log.warn({ term: this.term, why }, 'leadership lost');
    for (const fn of this.lostFns) fn(why);
  }
}

function seen(kv: IKeyValue): LeaderSeen {
  const record = JSON.parse(kv.value.toString()) as LeaderRecord;
  return { ...record, term: Number(kv.create_revision) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Keepalive attempts until one answers: the first at once, then one every `hedgeMs` (or sooner after a failure) while
 * none has, until `until()` has passed (rejects). Resolves with the first answer's TTL and when that attempt was sent.
 */
function keepAliveRound(client: Etcd3, id: string, timing: { attemptMs: number; hedgeMs: number }, until: () => number, onFailure: (err: Error) => void): Promise<{ ttl: number; sentAt: number }> {
  return new Promise((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const next = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(send, ms);
    };
    const send = () => {
      if (done) return;
      const left = until() - performance.now();
      if (left <= 0) {
        done = true;
        reject(new Error('no keepalive answered in time'));
        return;
      }
      const sentAt = performance.now();
      keepAliveOnce(client, id, Math.max(200, Math.min(timing.attemptMs, left))).then(
        (ttl) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve({ ttl, sentAt });
        },
        (err: Error) => {
          if (done) return;
          onFailure(err);
          next(KEEPALIVE_RETRY_MS); // refused at once (a dead member): the next one soon (hedgeMs is never shorter)
        },
      );
      next(timing.hedgeMs);
    };
    send();
  });
}

/** One LeaseKeepAlive exchange on a stream of its own; the TTL etcd answered (0: the lease is gone). */
async function keepAliveOnce(client: Etcd3, id: string, timeoutMs: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive();
  try {
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no keepalive answer within ${Math.round(timeoutMs)} ms`)), timeoutMs);
      stream.on('data', (res: { TTL: string }) => {
        clearTimeout(timer);
        resolve(Number(res.TTL));
      });
      stream.on('error', (err: Error) => {
        clearTimeout(timer);
        reject(err);
      });
      stream.write({ ID: id });
    });
  } finally {
    stream.end();
    // and the call itself, if it is still open (an attempt that timed out on a hung member): ended first, so that
    // etcd3 does not count the cancellation against the member
    (stream as { cancel?: () => void }).cancel?.();
  }
}
