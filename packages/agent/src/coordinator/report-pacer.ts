// When the agent's next slot report goes to the coordinator. A report is every slot of the machine: built (a log
// tail per slot), serialized, sent, and stored by the coordinator in its database. A change of what a slot *is* —
// its lifecycle, a request's result, an address, replication stalled or a backlog emptied — goes within
// REPORT_COALESCE_MS, as it always did. A backlog that merely grew or shrank goes at most every
// BACKLOG_REPORT_EVERY_MS: under mail load every delivery and every batch of a rolling sync_client changes a
// master's backlog. (At 1 msg/s per store nearly every change is a backlog emptying, which stays immediate: the
// pacing alone changed nothing measurable in bench:overhead; it bounds the reports of a busier store.)
import { monotonicMs } from '../lease/lease.js';

export const REPORT_COALESCE_MS = 15;
/** The backlog the coordinator shows and decides on (a switchover's catch-up) is at most this old under load. */
export const BACKLOG_REPORT_EVERY_MS = 200;

/** `state`: what a slot is changed; `backlog`: only its backlog's size or age. */
export type ReportUrgency = 'state' | 'backlog';

export class ReportPacer {
  private timer: NodeJS.Timeout | undefined;
  private dueAt: number | undefined;
  private lastSentAt = -Infinity;

  constructor(
    private readonly send: () => void,
    private readonly now: () => number = monotonicMs,
  ) {}

  /** Something changed: a report goes at the earliest time this change allows (an earlier one already due covers it). */
  soon(what: ReportUrgency = 'state'): void {
    const now = this.now();
    const at = what === 'state' ? now + REPORT_COALESCE_MS : Math.max(now + REPORT_COALESCE_MS, this.lastSentAt + BACKLOG_REPORT_EVERY_MS);
    if (this.dueAt !== undefined && this.dueAt <= at) return;
    clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dueAt = undefined;
      this.lastSentAt = this.now();
      this.send();
    }, at - now);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = undefined;
  }
}
