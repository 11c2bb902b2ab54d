// Whether this machine's master slots may serve, and until when: the later of the coordinator's lease (renewed by
// acknowledged heartbeats) and the failsafe deadline (every replica partner promised, while the coordinator is
// unreachable for all of them, not to accept a promotion). The fence process enforces the same deadline; this
// object tells the agent's own supervisors, so that the agent never restarts what the fence killed.
import type { Logger } from '@slotctl/shared';
import { monotonicMs } from '../lease/lease.js';

export interface AuthorityHooks {
  /** A new deadline: the fence must know it before anything relies on it (awaited). */
  publish: (deadline: number | undefined, holder: string) => Promise<void>;
  /** The deadline passed: stop serving as master. */
  lost: (why: string) => void;
  /** Held again after it was lost (or for the first time): masters may start. */
  regained: () => void;
  log: Logger;
}

export class ServingAuthority {
  private leaseUntil: number | undefined;
  private failsafeUntil: number | undefined;
  private held = false;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private published: number | undefined;

  constructor(private readonly hooks: AuthorityHooks, inherited?: number) {
    // an agent restarted within its predecessor's lease keeps its adopted masters until that lease ends
    this.leaseUntil = inherited;
    this.held = this.holds();
    this.arm();
  }

  get deadline(): number | undefined {
    if (this.leaseUntil === undefined) return this.failsafeUntil;
    if (this.failsafeUntil === undefined) return this.leaseUntil;
    return Math.max(this.leaseUntil, this.failsafeUntil);
  }

  get holder(): string {
    if (this.failsafeUntil !== undefined && (this.leaseUntil === undefined || this.failsafeUntil > this.leaseUntil)) return 'failsafe (partners promised)';
    return 'coordinator lease';
  }

  /** Ms left, negative when expired; undefined when never held. */
  remaining(now = monotonicMs()): number | undefined {
    const d = this.deadline;
    return d === undefined ? undefined : d - now;
  }

  holds(now = monotonicMs()): boolean {
    const d = this.deadline;
    return d !== undefined && now < d;
  }

  get coordinatorLeaseHeld(): boolean {
    return this.leaseUntil !== undefined && monotonicMs() < this.leaseUntil;
  }

  renewLease(deadline: number): void {
    if (this.leaseUntil !== undefined && deadline <= this.leaseUntil) return;
    this.leaseUntil = deadline;
    this.changed();
  }

  /** The failsafe deadline (undefined: no promise holds). It may move back: promises are short and renewed. */
  setFailsafe(deadline: number | undefined): void {
    if (deadline === this.failsafeUntil) return;
    this.failsafeUntil = deadline;
    this.changed();
  }

  private changed(): void {
    const deadline = this.deadline;
    const holder = this.holder;
    if (deadline === this.published) return; // e.g. a failsafe promise shorter than the lease: nothing to tell
    this.published = deadline;
    this.chain = this.chain.then(async () => {
      await this.hooks.publish(deadline, holder);
      if (!this.held && this.holds()) {
        this.held = true;
        this.hooks.log.info({ holder, deadlineInMs: this.remaining() }, 'lease held: master slots may serve');
        this.hooks.regained();
      }
      this.arm();
    });
  }

  private arm(): void {
    clearTimeout(this.timer);
    const left = this.remaining();
    if (left === undefined || !this.held) return;
    this.timer = setTimeout(() => {
      if (this.holds()) return this.arm();
      this.held = false;
      this.hooks.log.warn({ holder: this.holder }, 'lease expired: no acknowledged heartbeat and no failsafe promise; master slots stop serving (the fence kills them)');
      this.hooks.lost('lease expired');
    }, Math.max(0, left));
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
