// Work that may wait a few milliseconds, done a turn of the event loop at a time for at most `budgetMs`, so that
// what cannot wait (heartbeats and their acknowledgements) is read and answered between two slices. One entry per
// key: a newer request for the same key replaces the queued one (a machine's desired state is computed when sent).
export interface PacedOptions {
  budgetMs: number;
  now?: () => number;
}

export class Paced {
  private readonly queue = new Map<string, () => void>();
  private scheduled = false;
  private readonly now: () => number;

  constructor(private readonly options: PacedOptions, private readonly onError: (key: string, err: unknown) => void) {
    this.now = options.now ?? (() => performance.now());
  }

  add(key: string, work: () => void): void {
    this.queue.delete(key); // to the back: the newest request decides
    this.queue.set(key, work);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }

  get size(): number {
    return this.queue.size;
  }

  /** One slice; `all` (shutdown, tests) does everything queued. */
  drain(all = false): void {
    this.scheduled = false;
    const until = this.now() + this.options.budgetMs;
    let done = 0;
    for (const [key, work] of this.queue) {
      if (!all && done > 0 && this.now() >= until) break;
      this.queue.delete(key);
      done++;
      try {
        work();
      } catch (err) {
        this.onError(key, err);
      }
    }
    if (this.queue.size && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.drain());
    }
  }
}
