import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BACKLOG_REPORT_EVERY_MS, REPORT_COALESCE_MS, ReportPacer } from './report-pacer.js';

describe('ReportPacer', () => {
  let sent: number[];
  let pacer: ReportPacer;
  beforeEach(() => {
    vi.useFakeTimers();
    sent = [];
    pacer = new ReportPacer(() => void sent.push(Date.now()), () => Date.now());
  });
  afterEach(() => {
    pacer.stop();
    vi.useRealTimers();
  });

  it('sends a change of state within the coalescing delay, one report for a burst', () => {
    const t0 = Date.now();
    pacer.soon('state');
    pacer.soon('state');
    vi.advanceTimersByTime(REPORT_COALESCE_MS);
    expect(sent).toEqual([t0 + REPORT_COALESCE_MS]);
  });

  it('sends backlog changes at most every BACKLOG_REPORT_EVERY_MS, the last one never lost', () => {
    const t0 = Date.now();
    // a delivery every 10 ms for a second: one report at once, then one per interval
    for (let i = 0; i < 100; i++) {
      pacer.soon('backlog');
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(BACKLOG_REPORT_EVERY_MS);
    expect(sent[0]).toBe(t0 + REPORT_COALESCE_MS);
    for (let i = 1; i < sent.length; i++) expect(sent[i]! - sent[i - 1]!).toBeGreaterThanOrEqual(BACKLOG_REPORT_EVERY_MS);
    expect(sent.length).toBeLessThanOrEqual(1 + Math.ceil(1000 / BACKLOG_REPORT_EVERY_MS));
    // the last change (at t0 + 990) went out in a report sent after it
    expect(sent.at(-1)!).toBeGreaterThanOrEqual(t0 + 990);
  });

  it('does not hold a change of state behind a backlog report waiting for its interval', () => {
    pacer.soon('backlog');
    vi.advanceTimersByTime(REPORT_COALESCE_MS);
    pacer.soon('backlog'); // due a whole interval after the first
    vi.advanceTimersByTime(50);
    const at = Date.now();
    pacer.soon('state');
    vi.advanceTimersByTime(REPORT_COALESCE_MS);
    expect(sent.at(-1)).toBe(at + REPORT_COALESCE_MS);
    // the backlog change rode along: nothing more is due
    vi.advanceTimersByTime(1000);
    expect(sent).toHaveLength(2);
  });

  it('sends nothing after stop', () => {
    pacer.soon('state');
    pacer.stop();
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual([]);
  });
});
