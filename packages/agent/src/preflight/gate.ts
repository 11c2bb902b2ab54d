// One slot's checks before start, with their memory: the problem that holds the slot down and when to look again
// (1 s, 2 s, 4 s … 10 s: a fixed permission starts the slot within seconds, without the agent being restarted, and
// a slot that stays broken costs a few lstat calls every 10 s).
import { preflight, type PreflightInput } from './checks.js';

const MAX_BACKOFF_MS = 10_000;

export class PreflightGate {
  /** The sentence(s) holding the slot down ('' = none). */
  problem = '';
  private failures = 0;
  private nextAt = 0;

  /** `now`: monotonic ms (a wall clock stepped back by NTP would hold the slot down for the length of the step). */
  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Held down by a failed check. */
  get blocked(): boolean {
    return this.problem !== '';
  }

  /**
   * Held down and due for another look; true once per backoff step. Not once until check() has run again: a start
   * that stops short of the checks (waiting for the lease, say) must be tried again, or the slot stays down until its
   * next desired state (the soak, seed 20261204: a new master FAILED for 8 minutes).
   */
  takeDue(now = this.now()): boolean {
    if (!this.blocked || now < this.nextAt) return false;
    this.nextAt = now + this.backoff();
    return true;
  }

  private backoff(): number {
    return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.max(0, this.failures - 1));
  }

  /** Runs the checks: '' when the slot may start, else what holds it down (every problem, one sentence each). */
  async check(input: PreflightInput, run = preflight): Promise<{ problem: string; changed: boolean; cleared: string }> {
    const problems = await run(input).catch((err: Error) => [`the checks before start failed: ${err.message}`]);
    const problem = problems.join('; ');
    const before = this.problem;
    this.problem = problem;
    this.failures = problem ? this.failures + 1 : 0;
    this.nextAt = problem ? this.now() + this.backoff() : 0;
    return { problem, changed: problem !== before, cleared: problem ? '' : before };
  }
}
