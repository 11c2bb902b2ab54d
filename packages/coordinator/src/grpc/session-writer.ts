// What agents' sessions write (heartbeats, reports, connects and disconnects) arrives at thousands a second, and a
// commit per message cost more than the message: writes are queued and committed in one transaction per turn of the
// event loop. Each write's callback runs only after the commit, so a heartbeat is acknowledged (which renews a
// lease) only once it is persisted. A write that throws is rolled back alone (its own savepoint) and told so; if the
// commit itself fails, every callback of the batch is told, and no heartbeat of it is acknowledged.
//
// Heartbeats go first: a turn commits every heartbeat queued, but other writes only for `budgetMs`; the rest wait
// for the next turn, after the event loop has read what arrived meanwhile. A thousand agents saying hello at once
// (each with its slots' reports) then delay no lease: the reports are written as fast as they can be, the
// acknowledgements go out every turn.
import type { Storage } from '../db/storage.js';

interface Pending {
  write: () => unknown;
  done: (err: unknown, result?: unknown) => void;
}

export interface WriterOptions {
  /** Time for non-heartbeat writes in one turn, ms (a turn's heartbeats are always written). */
  budgetMs: number;
  now?: () => number;
}

export class SessionWriter {
  private heartbeats: Pending[] = [];
  private others: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly now: () => number;
  batches = 0;

  constructor(private readonly storage: Pick<Storage, 'transaction'>, private readonly onError: (err: unknown) => void, private readonly options: WriterOptions = { budgetMs: 10 }) {
    this.now = options.now ?? (() => performance.now());
  }

  /** A heartbeat: one UPDATE, written every turn, no savepoint of its own. */
  heartbeat(write: () => void, done: (err: unknown) => void): void {
    if (this.closed) return refuse(done);
    this.heartbeats.push({ write, done });
    this.schedule();
  }

  /** Any other write (reports, events): in a savepoint of its own, so that one refused write fails alone. */
  enqueue<T>(write: () => T, done: (err: unknown, result?: T) => void): void {
    if (this.closed) return refuse(done);
    this.others.push({ write: () => this.storage.transaction(write), done: done as Pending['done'] });
    this.schedule();
  }

  get backlog(): number {
    return this.others.length;
  }

  /**
   * Writes what is queued (`write`; else it is refused: a deposed leader writes nothing more), then refuses every
   * write: the database is closed next, and a deposed leader's sessions may still deliver.
   */
  close(write = true): void {
    if (write) this.flush(true);
    this.closed = true;
    const queued = [...this.heartbeats, ...this.others];
    this.heartbeats = [];
    this.others = [];
    for (const p of queued) refuse(p.done);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** One turn's batch; `all` (shutdown) writes everything queued. */
  flush(all = false): void {
    this.scheduled = false;
    if (this.closed) return;
    const heartbeats = this.heartbeats;
    this.heartbeats = [];
    const done: { p: Pending; err?: unknown; result?: unknown }[] = [];
    const until = this.now() + this.options.budgetMs;
    let taken = 0;
    try {
      this.storage.transaction(() => {
        for (const p of heartbeats) {
          p.write();
          done.push({ p });
        }
        while (taken < this.others.length && (all || taken === 0 || this.now() < until)) {
          const p = this.others[taken++]!;
          try {
            done.push({ p, result: p.write() });
          } catch (err) {
            done.push({ p, err });
          }
        }
      });
    } catch (err) {
      this.onError(err);
      const failed = [...heartbeats, ...this.others.splice(0, taken)];
      for (const p of failed) p.done(err);
      if (this.others.length) this.schedule();
      return;
    }
    this.others.splice(0, taken);
    if (this.others.length) this.schedule();
    if (done.length) this.batches++;
    for (const d of done) d.p.done(d.err, d.result);
  }
}

/** What a write after close is told (on the next turn: callers do not expect their callback inside the call). */
function refuse(done: (err: unknown) => void): void {
  queueMicrotask(() => done(new WriterClosed('this coordinator stopped leading: nothing more is written')));
}

export class WriterClosed extends Error {
  override readonly name = 'WriterClosed';
}
