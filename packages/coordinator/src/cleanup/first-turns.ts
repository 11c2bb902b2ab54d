// A slot never cleaned has its first nightly turn counted from when this coordinator first saw it (nothing is
// written). The cleanup check runs twice a second: it asks which first turns have come, and is answered from a list
// kept in turn order, not by a walk over every slot of the cluster (18,000 of them at 1,000 machines).
import type { CleanupConfig } from './config.js';
import { nextTurn } from './schedule.js';

export class FirstTurns {
  private readonly seen = new Map<string, number>();
  /** Per slot still watched: its first turn (ISO) under `config`. */
  private readonly turns = new Map<string, string>();
  /** Turns still to come, in order once `sorted`. */
  private queue: { slot: string; at: string }[] = [];
  private sorted = true;
  private readonly due = new Set<string>();
  private config: CleanupConfig | undefined;

  constructor(private readonly turnOf: (seenMs: number, config: CleanupConfig, slot: string) => number = nextTurn) {}

  /** The slot is seen (the first time counts). */
  see(slot: string, now: number, config: CleanupConfig): void {
    this.use(config);
    if (this.seen.has(slot)) return;
    this.seen.set(slot, now);
    this.watch(slot);
  }

  /** The slot's first turn (ISO); a slot not seen before is seen now. */
  at(slot: string, now: number, config: CleanupConfig): string {
    this.see(slot, now, config);
    if (!this.turns.has(slot)) this.watch(slot);
    return this.turns.get(slot)!;
  }

  /** Cleaned once (its next turn is stored in the database): no longer watched. */
  forget(slot: string): void {
    this.turns.delete(slot);
    this.due.delete(slot);
  }

  /** The watched slots whose first turn has come by `nowAt` (ISO); they stay due until forgotten. */
  dueBy(nowAt: string, config: CleanupConfig): string[] {
    this.use(config);
    if (!this.sorted) {
      this.queue.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      this.sorted = true;
    }
    let i = 0;
    while (i < this.queue.length && this.queue[i]!.at <= nowAt) {
      const { slot, at } = this.queue[i++]!;
      if (this.turns.get(slot) === at) this.due.add(slot); // else forgotten, or queued again under another policy
    }
    if (i) this.queue = this.queue.slice(i);
    return [...this.due];
  }

  seenSlots(): IterableIterator<string> {
    return this.seen.keys();
  }

  private watch(slot: string): void {
    const at = new Date(this.turnOf(this.seen.get(slot)!, this.config!, slot)).toISOString();
    this.turns.set(slot, at);
    this.queue.push({ slot, at });
    this.sorted = false;
  }

  /** A new policy moves every turn: all are computed again. */
  private use(config: CleanupConfig): void {
    if (config === this.config) return;
    this.config = config;
    this.queue = [];
    this.due.clear();
    const watched = [...this.turns.keys()];
    this.turns.clear();
    for (const slot of watched) this.watch(slot);
  }
}
