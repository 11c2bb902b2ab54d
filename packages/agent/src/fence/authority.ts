// Whether this machine's master slots may serve, and until when: the later of the coordinator's lease (renewed by
// acknowledged heartbeats) and the failsafe deadline (every replica partner promised, while the coordinator is
// unreachable for all of them, not to accept a promotion). The fence process enforces the deadline it last read
// from fence.json; this object tells the agent's own supervisors, so that the agent never restarts what the fence
// would kill: it holds only up to the deadline the fence has been told (the published one), never further.
import type { Logger } from '@slotctl/shared';
import { monotonicMs } from '../lease/lease.js';

export interface AuthorityHooks {
  /** Tells the fence a new deadline; true once the fence can read it (synchronous: nothing waits in a queue). */
  publish: (deadline: number | undefined, holder: string) => boolean;
  /** The deadline passed: stop serving as master. */
  lost: (why: string) => void;
  /** Held again after it was lost (or for the first time): masters may start. */
  regained: () => void;
  log: Logger;
  /** For tests: the clock (CLOCK_MONOTONIC ms). */
  now?: () => number;
}

export class ServingAuthority {
  private leaseUntil: number | undefined;
  private failsafeUntil: number | undefined;
  /** The deadline the fence can read: the agent never holds beyond it. */
  private published: number | undefined;
  private held = false;
  private timer: NodeJS.Timeout | undefined;
  private renewals = 0;
  private closest: number | undefined;
  private summaryAt: number;
  private readonly now: () => number;

  constructor(private readonly hooks: AuthorityHooks, inherited?: number) {
    this.now = hooks.now ?? monotonicMs;
    this.summaryAt = this.now();
    // an agent restarted within its predecessor's lease keeps its adopted masters until that lease ends (that
    // deadline is already what fence.json says)
    this.leaseUntil = inherited;
    this.published = inherited;
    this.held = this.holds();
    this.arm();
  }

  /** The deadline as this agent counts it (lease or failsafe), whether or not the fence knows it yet. */
  get deadline(): number | undefined {
    if (this.leaseUntil === undefined) return this.failsafeUntil;
    if (this.failsafeUntil === undefined) return this.leaseUntil;
    return Math.max(this.leaseUntil, this.failsafeUntil);
  }

  /** The deadline the masters may serve to: the earlier of the agent's own and the one the fence knows. */
  get servingUntil(): number | undefined {
    return this.effective;
  }

  private get effective(): number | undefined {
    const own = this.deadline;
    if (own === undefined || this.published === undefined) return undefined;
    return Math.min(own, this.published);
  }

  get holder(): string {
    if (this.failsafeUntil !== undefined && (this.leaseUntil === undefined || this.failsafeUntil > this.leaseUntil)) return 'failsafe (partners promised)';
    return 'coordinator lease';
  }

  /** Ms left, negative when expired; undefined when never held. */
  remaining(now = this.now()): number | undefined {
    const d = this.effective;
    return d === undefined ? undefined : d - now;
  }

  holds(now = this.now()): boolean {
    const d = this.effective;
    return d !== undefined && now < d;
  }

  get coordinatorLeaseHeld(): boolean {
    return this.leaseUntil !== undefined && this.now() < this.leaseUntil;
  }

  renewLease(deadline: number): void {
    if (this.leaseUntil !== undefined && deadline <= this.leaseUntil) return;
    const left = this.remaining();
    if (left !== undefined && (this.closest === undefined || left < this.closest)) this.closest = left;
    this.renewals++;
    this.leaseUntil = deadline;
    this.changed();
    this.summarize();
  }

  /**
   * The failsafe deadline (undefined: no promise holds). It may move back: promises are short and renewed. It only
   * extends a deadline that has not passed: once the masters were fenced, the coordinator may have failed their
   * stores over (it declares a machine down only after its lease ran out), so only a lease brings them back.
   */
  setFailsafe(deadline: number | undefined): void {
    if (deadline !== undefined && !this.holds()) deadline = undefined;
    if (deadline === this.failsafeUntil) return;
    this.failsafeUntil = deadline;
    this.changed();
  }

  /** Renewals are many (one a second): one line a minute says they happen and how close the lease came to its end. */
  private summarize(): void {
    const now = this.now();
    if (now - this.summaryAt < 60_000) return;
    this.hooks.log.info({ renewals: this.renewals, closestMs: this.closest, deadlineInMs: this.remaining(now), holder: this.holder }, 'lease renewed');
    this.renewals = 0;
    this.closest = undefined;
    this.summaryAt = now;
  }

  private changed(): void {
    const deadline = this.deadline;
    const holder = this.holder;
    if (deadline !== this.published) {
      if (this.hooks.publish(deadline, holder)) this.published = deadline;
      // not written: the fence keeps the deadline it had, and so does `effective` (never beyond it)
    }
    if (!this.held && this.holds()) {
      this.held = true;
      this.hooks.log.info({ holder, deadlineInMs: this.remaining() }, 'lease held: master slots may serve');
      this.hooks.regained();
    }
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    const left = this.remaining();
    if (left === undefined || !this.held) return;
    this.timer = setTimeout(() => {
      if (this.holds()) return this.arm();
      this.held = false;
      this.hooks.log.warn({ holder: this.holder, published: this.published, own: this.deadline }, 'lease expired: no acknowledged heartbeat and no failsafe promise; master slots stop serving (the fence kills them)');
      this.hooks.lost('lease expired');
    }, Math.max(0, left));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
