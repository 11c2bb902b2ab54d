// What the HTTP endpoints see of this coordinator process: the leading Coordinator while there is one (its database,
// sessions and status), nothing while it follows. Outlives leaderships, like the gRPC server.
import { CoordinatorMetrics, type LeaderSnapshot } from './metrics.js';

import type { PageSource } from './page-model.js';

/** What `slotctl status` shows (the Status reply), as the leading coordinator computes it. */
export type StatusReplyObject = PageSource['status'];

export interface LeaderView {
  snapshot(): LeaderSnapshot;
  status(): StatusReplyObject;
  /** The newest `limit` events, oldest first. */
  recentEvents(limit: number): PageSource['events'];
  /** The id of the newest event now (0: none). */
  lastEventId(): number;
}

export class CoordinatorObserver {
  readonly metrics = new CoordinatorMetrics();
  private view: LeaderView | undefined;

  /** A Coordinator started leading: the endpoints show its state. */
  lead(view: LeaderView): void {
    this.view = view;
    this.metrics.setSource(() => view.snapshot(), view.lastEventId());
  }

  /** It stopped: the endpoints say this coordinator follows. */
  follow(): void {
    this.view = undefined;
    this.metrics.setSource(undefined);
  }

  get leader(): LeaderView | undefined {
    return this.view;
  }

  /** For the agent sessions: what they measure goes into the metrics. */
  readonly sessions = {
    acknowledged: (seconds: number) => this.metrics.heartbeatAcknowledged(seconds),
    fenced: (machine: string, fenced: boolean) => this.metrics.fencedState(machine, fenced),
  };
}
