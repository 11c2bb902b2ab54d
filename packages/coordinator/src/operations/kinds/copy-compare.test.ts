// A copy's progress as the operator reads it (pure logic), and the comparison's request-check action on a real
// database: a repeated comparison keeps what the last one found.
import { beforeEach, describe, expect, it } from 'vitest';
import { clusterStorage } from '../../db/cluster-storage.fixture.js';
import type { MailboxSummaryRow } from '../../db/rows.js';
import type { Storage } from '../../db/storage.js';
import { kindContext } from '../rows.fixture.js';
import { compareAction, compareWaiting, lastProgressAt, seedProgressText, type CompareView } from './copy-compare.js';

const mbox = (name: string, lastUid: number): MailboxSummaryRow => ({ name, exists: true, uniqueid: `u-${name}`, messages: lastUid, uidvalidity: 1, lastUid, highestModseq: lastUid });

describe('comparison actions', () => {
  const rows = clusterStorage();
  let storage: Storage;
  beforeEach(() => {
    storage = rows.storage;
  });

  it('asks again with what the last comparison found, said while the new one waits; a first comparison found nothing yet', () => {
    const [master, target] = [storage.stores.get('s1')!.masterSlot, storage.stores.get('s1')!.replicaSlot];
    storage.operations.create({ id: 'mv-1', kind: 'move-replica', store: 's1', step: 'verify', params: {}, reason: 'test' });
    const ctx = kindContext(storage, { push: () => undefined, connected: () => new Set(['m1', 'm2']) });
    const params = { master, masterMachine: 'm1', target, targetMachine: 'm2', verifyTimeoutMs: 120_000 };
    const view = (checkId: string, results?: { master: MailboxSummaryRow[]; target: MailboxSummaryRow[] }): CompareView => ({
      now: Date.now(),
      op: storage.operations.get('mv-1')!,
      params,
      master: { ...storage.slots.get(master)!, results: results ? { check: { op: checkId, mailboxes: results.master, error: '' } } : {} },
      target: { ...storage.slots.get(target)!, results: results ? { check: { op: checkId, mailboxes: results.target, error: '' } } : {} },
      checkId,
    });

    compareAction('request-check', view(''), ctx);
    expect(storage.operations.get('mv-1')!.result).toMatchObject({ checkId: 'mv-1.1', lastDifferences: '' });
    expect(storage.slots.get(master)!.requests.check?.id).toBe('mv-1.1');
    expect(compareWaiting(view('mv-1.1'))).toBe(`${master}'s mailbox summary (check mv-1.1)`);

    // both summaries in, the new slot behind: the next comparison is asked at once, and its wait says why
    compareAction('request-check', view('mv-1.1', { master: [mbox('user.ann', 3)], target: [] }), ctx);
    expect(storage.operations.get('mv-1')!.result).toMatchObject({ checkId: 'mv-1.2', lastDifferences: '1 difference(s): user.ann: missing on the new slot' });
    expect(compareWaiting(view('mv-1.2'))).toBe(`${master}'s mailbox summary (check mv-1.2); the last comparison found 1 difference(s): user.ann: missing on the new slot`);
  });
});

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
