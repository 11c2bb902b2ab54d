// The cluster view the metrics and the status page read, kept fresh in the background while anyone reads it. At
// 9,000 stores a view costs ~0.3 s of the loop that acknowledges heartbeats (reading 18,000 slot rows, mostly): a
// scrape that computed its own took 0.8 s, and every scraper and page would pay it again. So one view is computed
// at most every `max(1 s, 20 × its cost)` — a twentieth of the loop at most — and readers take the newest; nobody
// reading for two minutes stops the refreshing.
export interface CachedView<V> {
  view: V;
  /** When it was computed (performance.now()) and how long it took. */
  at: number;
  ms: number;
}

const IDLE_MS = 120_000;
const MIN_REFRESH_MS = 1000;

export class ViewCache<V> {
  private cached: CachedView<V> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastRead = 0;
  private stopped = false;

  constructor(private readonly compute: () => V) {}

  /** The newest view (computed now if there is none yet). */
  get(): CachedView<V> {
    this.lastRead = performance.now();
    if (!this.cached) this.refresh();
    if (!this.timer && !this.stopped) this.schedule();
    return this.cached!;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.cached = undefined;
  }

  private refresh(): void {
    const t = performance.now();
    const view = this.compute();
    this.cached = { view, at: t, ms: performance.now() - t };
  }

  private schedule(): void {
    const every = Math.max(MIN_REFRESH_MS, (this.cached?.ms ?? 0) * 20);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      if (performance.now() - this.lastRead > IDLE_MS) {
        this.cached = undefined;
        return;
      }
      this.refresh();
      this.schedule();
    }, every);
    this.timer.unref();
  }
}
