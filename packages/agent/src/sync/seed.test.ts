import { describe, expect, it } from 'vitest';
import { internalName, externalName } from '../cyrus/mailboxes.js';
import { batchSize, paceMs, seedUnits, seedWork, userOf } from './seed.js';

describe('full initial sync work list', () => {
  it('copies each user once (with a dot in the name), shared mailboxes one by one, never delayed-deleted ones', () => {
    expect(userOf('user.bob^smith.Sent')).toBe('bob.smith');
    expect(userOf('shared.news')).toBeUndefined();
    expect(seedWork(['user.ann', 'user.ann.Projects', 'user.bob^smith', 'shared.news', 'DELETED.user.ann.Old.5F3A'])).toEqual({ users: ['ann', 'bob.smith'], shared: ['shared.news'] });
  });

  it('turns mbexamine names back into internal ones', () => {
    for (const name of ['user.ann', 'user.bob^smith.Sent', 'DELETED.user.ann.Old.5F3A']) expect(internalName(externalName(name))).toBe(name);
  });
});

describe('seed progress', () => {
  it('counts each user\'s mailboxes, messages and bytes together, shared mailboxes alone, never delayed-deleted ones', () => {
    const units = seedUnits([
      { name: 'user.ann', messages: 3, bytes: 300 },
      { name: 'user.ann.Projects', messages: 2, bytes: 50 },
      { name: 'shared.news', messages: 1, bytes: 10 },
      { name: 'DELETED.user.ann.Old.5F3A', messages: 9, bytes: 900 },
      { name: 'user.ben', messages: Number.NaN, bytes: 0 },
    ]);
    expect(Object.fromEntries(units)).toEqual({ 'user:ann': { mailboxes: 2, messages: 5, bytes: 350 }, 'mailbox:shared.news': { mailboxes: 1, messages: 1, bytes: 10 }, 'user:ben': { mailboxes: 1, messages: 0, bytes: 0 } });
  });

  it('batches users so that a seed reports some twenty times, at most 50 users per sync_client', () => {
    expect([1, 20, 21, 400, 1000, 100_000].map(batchSize)).toEqual([1, 1, 2, 20, 50, 50]);
  });
});

describe('seed pacing (sync_client has no bandwidth limit of its own)', () => {
  it('pauses after a batch so that the average stays at the limit; never with no limit or when behind it', () => {
    // 30 MB done in 1 s at 10 MB/s: 2 s more
    expect(paceMs(30e6, 1000, 10e6)).toBe(2000);
    expect(paceMs(5e6, 1000, 10e6)).toBe(0);
    expect(paceMs(30e6, 1000, 0)).toBe(0);
  });
});
