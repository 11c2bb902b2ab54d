// Many wake-ups, few evaluations: a burst of agent reports (a thousand agents saying hello after a coordinator
// restart) costs one evaluation per `gapMs`, not one per report, and a lone wake-up still runs on the next turn of
// the event loop. Every evaluation reads the database as it is then, so folding requests loses nothing.

export interface CoalesceClock {
  now: () => number;
  setTimeout: (fn: () => void, ms: number) => unknown;
  clearTimeout: (handle: unknown) => void;
}

const realClock: CoalesceClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class Coalescer {
  private pending: unknown;
  private lastRun = -Infinity;
  runs = 0;

  constructor(private readonly run: () => void, private readonly gapMs: number, private readonly clock: CoalesceClock = realClock) {}

  /** Runs `run` soon: at once (next turn) after a quiet spell, else `gapMs` after the previous run; never twice queued. */
  request(): void {
    if (this.pending !== undefined) return;
    const wait = Math.max(0, this.lastRun + this.gapMs - this.clock.now());
    this.pending = this.clock.setTimeout(() => {
      this.pending = undefined;
      this.lastRun = this.clock.now();
      this.runs++;
      this.run();
    }, wait);
  }

  cancel(): void {
    if (this.pending !== undefined) this.clock.clearTimeout(this.pending);
    this.pending = undefined;
  }
}
