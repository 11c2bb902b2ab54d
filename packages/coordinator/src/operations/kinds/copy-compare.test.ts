// A copy's progress as the operator reads it (pure logic).
import { describe, expect, it } from 'vitest';
import { seedProgressText } from './copy-compare.js';

describe('seed progress text', () => {
  const at = Date.parse('2026-12-07T10:00:10Z');
  const progress = { op: 'mv-1', usersDone: 5, users: 20, mailboxesDone: 9, mailboxes: 40, messagesDone: 2500, messages: 10_000, bytesDone: 12e6, bytes: 48e6, startedAt: '2026-12-07T10:00:00Z', updatedAt: '2026-12-07T10:00:08Z' };

  it('says users, bytes and messages done of the totals, and the time left at the rate so far', () => {
    expect(seedProgressText({ results: { 'seed-progress': progress } }, 'mv-1', at)).toBe(': 5 of 20 user(s), 12 of 48 MB (25%), 2500 of 10000 message(s), about 24 s left at 1.5 MB/s (reported 2 s ago)');
  });

  it('says nothing for another copy, before the first report, or without a master', () => {
    expect(seedProgressText({ results: { 'seed-progress': progress } }, 'mv-1.catch-up', at)).toBe('');
    expect(seedProgressText({ results: {} }, 'mv-1', at)).toBe('');
    expect(seedProgressText(undefined, 'mv-1', at)).toBe('');
  });
});
