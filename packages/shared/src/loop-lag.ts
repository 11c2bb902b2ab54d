// Watches a daemon's own event loop: heartbeats, their acknowledgements, lease renewals and fence updates run on it,
// so a loop held up by other work (spawns, synchronous reads, big transactions) is what would make a lease lapse on
// a busy host. A delay worth knowing of is logged with its figures; nothing else depends on this.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from './log.js';

export interface LoopLagOptions {
  log: Logger;
  /** How often the histogram is read and reset. */
  everyMs?: number;
  /** A maximum delay above this is logged (warn). */
  warnMs?: number;
}

export function watchLoopLag(options: LoopLagOptions): () => void {
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  const warnMs = options.warnMs ?? 250;
  const timer = setInterval(() => {
    const maxMs = histogram.max / 1e6;
    if (maxMs > warnMs) options.log.warn({ maxMs: Math.round(maxMs), p99Ms: Math.round(histogram.percentile(99) / 1e6), meanMs: Math.round(histogram.mean / 1e6) }, 'event loop delayed: heartbeats, acknowledgements and lease renewals waited this long');
    histogram.reset();
  }, options.everyMs ?? 5000);
  timer.unref();
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
