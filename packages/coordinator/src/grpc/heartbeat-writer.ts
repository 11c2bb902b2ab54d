// Heartbeats arrive at up to thousands a second. They are queued and written in one transaction per turn of the
// event loop; each is acknowledged (which renews the agent's lease) only after its row is committed.
import type { Repository } from '../db/repository.js';

interface Pending {
  machine: string;
  at: string;
  done: () => void;
}

export class HeartbeatWriter {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly repo: Repository, private readonly onError: (err: unknown) => void) {}

  enqueue(machine: string, done: () => void): void {
    this.queue.push({ machine, at: new Date().toISOString(), done });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    if (batch.length === 0) return;
    this.queue = [];
    try {
      this.repo.recordHeartbeats(batch);
    } catch (err) {
      // Not acknowledged: the agents' leases are not renewed by heartbeats we could not persist.
      this.onError(err);
      return;
    }
    for (const beat of batch) beat.done();
  }
}
