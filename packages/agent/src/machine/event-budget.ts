// Keeps a noisy slot from flooding the coordinator's events table.

/** At most `limit` events per slot per window; what is dropped is counted and reported with the next line after the window. */
export class EventBudget {
  private readonly windows = new Map<string, { start: number; used: number; dropped: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly onSuppressed: (slot: string, count: number) => void,
    private readonly now = () => performance.now(),
  ) {}

  take(slot: string): boolean {
    const t = this.now();
    let w = this.windows.get(slot);
    if (!w || t - w.start >= this.windowMs) {
      if (w?.dropped) this.onSuppressed(slot, w.dropped);
      w = { start: t, used: 0, dropped: 0 };
      this.windows.set(slot, w);
    }
    if (w.used < this.limit) {
      w.used++;
      return true;
    }
    w.dropped++;
    return false;
  }
}
