// A copy's progress as the operator reads it (pure logic).
import { describe, expect, it } from 'vitest';
import { lastProgressAt, seedProgressText } from './copy-compare.js';

describe('seed progress text', () => {
  const progress = { op: 'mv-1', usersDone: 5, users: 20, mailboxesDone: 9, mailboxes: 40, messagesDone: 2500, messages: 10_000, bytesDone: 12e6, bytes: 48e6, startedAt: '2026-12-07T10:00:00Z', updatedAt: '2026-12-07T10:00:08Z' };

  it('says users, bytes and messages done of the totals, and when it ends at the rate so far (a time: no countdown to store every second)', () => {
    expect(seedProgressText({ results: { 'seed-progress': progress } }, 'mv-1')).toBe(': 5 of 20 user(s), 12 of 48 MB (25%), 2500 of 10000 message(s), done about 10:00:32 at 1.5 MB/s');
  });

  it('says nothing for another copy, before the first report, or without a master', () => {
    expect(seedProgressText({ results: { 'seed-progress': progress } }, 'mv-1.catch-up')).toBe('');
    expect(seedProgressText({ results: {} }, 'mv-1')).toBe('');
    expect(seedProgressText(undefined, 'mv-1')).toBe('');
  });
});

describe('a copy\'s last progress', () => {
  const progress = (op: string) => ({ results: { 'seed-progress': { op, usersDone: 1, users: 2, mailboxesDone: 1, mailboxes: 2, messagesDone: 1, messages: 2, bytesDone: 1, bytes: 2, startedAt: '2026-12-07T10:00:00Z', updatedAt: '2026-12-07T10:30:00Z' } } });
  it('is the time of the master\'s last report of any copy of the operation (its time limit counts from it)', () => {
    expect(lastProgressAt(progress('mv-1'), 'mv-1')).toBe(Date.parse('2026-12-07T10:30:00Z'));
    expect(lastProgressAt(progress('mv-1.catch-up-2'), 'mv-1')).toBe(Date.parse('2026-12-07T10:30:00Z'));
    expect(lastProgressAt(progress('mv-12'), 'mv-1')).toBe(0);
    expect(lastProgressAt(undefined, 'mv-1')).toBe(0);
  });
});
