// The event log's retention: events older than the cluster file's `events: keep` (90 days by default) are deleted
// hourly, in small batches so a large backlog never holds the database for long; the steps of a running operation are
// kept whatever their age (its `operations show` reads them).
import { parseDuration, type Logger } from '@slotctl/shared';
import type { Storage } from './storage.js';

export const EVENTS_SETTING = 'events';
export const DEFAULT_EVENTS_KEEP = '90d';
const BATCH = 5_000;
const EVERY_MS = 3_600_000;
const FIRST_AFTER_MS = 60_000;

/** How long events are kept, from the setting the cluster apply wrote (the default when there is none). */
export function eventsKeepMs(storage: Storage): number {
  const text = storage.settings.get(EVENTS_SETTING);
  const keep = text ? ((JSON.parse(text) as { keep?: string }).keep ?? DEFAULT_EVENTS_KEEP) : DEFAULT_EVENTS_KEEP;
  return parseDuration(keep, 'events keep');
}

/** Deletes the events older than the retention, `BATCH` at a time; returns how many were deleted. */
export async function pruneEvents(storage: Storage, now = Date.now()): Promise<number> {
  const before = new Date(now - eventsKeepMs(storage)).toISOString();
  let total = 0;
  for (;;) {
    const n = storage.events.prune(before, BATCH);
    total += n;
    if (n < BATCH) return total;
    await new Promise((resolve) => setImmediate(resolve)); // let heartbeats through between batches
  }
}

export class EventRetention {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly storage: Storage, private readonly log: Logger) {}

  start(): void {
    const run = (): void => {
      pruneEvents(this.storage)
        .then((n) => {
          if (n) this.log.info({ deleted: n, keepMs: eventsKeepMs(this.storage) }, 'old events deleted (events: keep)');
        })
        .catch((err: unknown) => this.log.error({ err }, 'deleting old events failed; retried in an hour'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(run, EVERY_MS).unref();
        });
    };
    this.timer = setTimeout(run, FIRST_AFTER_MS).unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
