// Work that may wait, done a turn of the event loop at a time for at most `budgetMs`, so that what cannot wait
// (heartbeats and their acknowledgements) is read and answered between two slices. One entry per key: a newer request
// for the same key replaces the queued one (a machine's desired state is computed when it is sent). An entry may ask
// not to run before a delay (a reconnect storm: the leases first, the rest once it has passed).
export interface PacedOptions {
  budgetMs: number;
  now?: () => number;
}

interface Entry {
  work: () => void;
  notBefore: number;
}

export class Paced {
  private readonly queue = new Map<string, Entry>();
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;

  constructor(private readonly options: PacedOptions, private readonly onError: (key: string, err: unknown) => void) {
    this.now = options.now ?? (() => performance.now());
  }

  add(key: string, work: () => void, delayMs = 0): void {
    this.queue.delete(key); // to the back: the newest request decides
    this.queue.set(key, { work, notBefore: this.now() + delayMs });
    this.schedule();
  }

  get size(): number {
    return this.queue.size;
  }

  /** One slice, in order of arrival, up to an entry that must still wait; `all` (shutdown, tests) does everything. */
  drain(all = false): void {
    this.scheduled = false;
    const until = this.now() + this.options.budgetMs;
    let done = 0;
    for (const [key, entry] of this.queue) {
      if (!all && done > 0 && this.now() >= until) break;
      if (!all && entry.notBefore > this.now()) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.drain(), entry.notBefore - this.now());
        return;
      }
      this.queue.delete(key);
      done++;
      try {
        entry.work();
      } catch (err) {
        this.onError(key, err);
      }
    }
    if (this.queue.size) this.schedule();
  }

  cancel(): void {
    clearTimeout(this.timer);
    this.queue.clear();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }
}

/** Counts events in the last second (two one-second buckets): is this a storm? */
export class StormWatch {
  private bucket = 0;
  private current = 0;
  private previous = 0;

  constructor(private readonly perSecond: number) {}

  /** One more event at `nowMs`; true while more than `perSecond` arrived in the last second or so. */
  hello(nowMs: number): boolean {
    const bucket = Math.floor(nowMs / 1000);
    if (bucket !== this.bucket) {
      this.previous = bucket === this.bucket + 1 ? this.current : 0;
      this.current = 0;
      this.bucket = bucket;
    }
    this.current++;
    return this.current + this.previous > this.perSecond;
  }
}
