import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fullSyncWork, logFullSync, MIN_FREE_BYTES, syncLogWriteFailure, UnloggedStateError, UnloggedStore, type FullSyncDeps } from './unlogged.js';

const dirs: string[] = [];
const stateDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'unlogged-'));
  dirs.push(d);
  return d;
};
const stores: UnloggedStore[] = [];
// A first mark saves without being awaited (mark() is synchronous): every store's writes end before its directory goes,
// or rmSync races the atomic write's temporary file (ENOTEMPTY, seen once in CI).
const newStore = () => {
  const store = new UnloggedStore(stateDir());
  stores.push(store);
  return store;
};
afterEach(async () => {
  for (const s of stores.splice(0)) await s.flush().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('syncLogWriteFailure', () => {
  it('names the file of each of sync_log.c\'s failures, as the soak saw them', () => {
    expect(syncLogWriteFailure('write() to /srv/m3/s11/meta/conf/sync/log failed: No space left on device')).toBe('/srv/m3/s11/meta/conf/sync/log');
    expect(syncLogWriteFailure('sync_log(): Unable to write to log file /m/conf/sync/log: No space left on device')).toBe('/m/conf/sync/log');
    expect(syncLogWriteFailure('sync_log(): Failed to lock /m/conf/sync/log for MAILBOX user.a: Input/output error')).toBe('/m/conf/sync/log');
  });

  it('ignores every other line', () => {
    expect(syncLogWriteFailure('IOERROR: write failed: fname=</m/conf/quota/s/user.a.NEW> syserror=<No space left on device>')).toBeUndefined();
    expect(syncLogWriteFailure('Reprocessing sync log file /m/conf/sync/log-run')).toBeUndefined();
  });
});

describe('fullSyncWork', () => {
  it('logs each user whole and every mailbox, without delayed-deleted folders or the replication marker', () => {
    expect(fullSyncWork(['user.bob^smith.Sent', 'user.ann', 'user.bob^smith', 'shared.news', 'DELETED.user.ann.Old.5F00AA', 'user.slotctl-replication-marker'])).toEqual({
      users: ['ann', 'bob.smith'],
      mailboxes: ['shared.news', 'user.ann', 'user.bob^smith', 'user.bob^smith.Sent'],
    });
  });
});

describe('UnloggedStore', () => {
  it('keeps the first time and counts every failed write, persisted across a restart', async () => {
    const dir = stateDir();
    const store = new UnloggedStore(dir);
    expect(store.mark('s1', 4, 'line 1', new Date('2026-12-05T01:00:00Z'))).toBe(true);
    expect(store.mark('s1', 5, 'line 2', new Date('2026-12-05T01:01:00Z'))).toBe(false);
    store.setLogPositions({ s1: { ino: 7, offset: 1234 } });
    await store.flush();
    const again = new UnloggedStore(dir);
    await again.load();
    expect(again.get('s1')).toEqual({ since: '2026-12-05T01:00:00.000Z', epoch: 4, lines: 2, last: 'line 2' });
    expect(again.logPosition('s1')).toEqual({ ino: 7, offset: 1234 });
    expect(JSON.parse(readFileSync(join(dir, 'unlogged.json'), 'utf8')).marks.s1.lines).toBe(2);
  });

  it('refuses to start from a file it cannot read, saying what it holds', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'unlogged.json'), '{"marks": ');
    await expect(new UnloggedStore(dir).load()).rejects.toThrow(/unlogged\.json: not valid JSON .*remove it to forget them/);
    writeFileSync(join(dir, 'unlogged.json'), '[]');
    await expect(new UnloggedStore(dir).load()).rejects.toThrow(UnloggedStateError);
  });

  it('clears a mark only if no failed write came after the count it was given, and never a demoted one', async () => {
    const store = newStore();
    await store.mark('s1', 1, 'a');
    await store.mark('s1', 1, 'b');
    expect(await store.clear('s1', 1)).toBe(false);
    expect(await store.clear('s1', 2)).toBe(true);
    expect(store.get('s1')).toBeUndefined();
    await store.mark('s2', 1, 'a');
    await store.quarantine('s2', 2, ['user.ann']);
    expect(await store.clear('s2', 1)).toBe(false);
    await store.mark('s2', 2, 'late');
    expect(store.get('s2')?.quarantined).toEqual({ epoch: 2, mailboxes: ['user.ann'] });
    await store.forget('s2');
    expect(store.slots()).toEqual([]);
  });
});

describe('logFullSync', () => {
  const layout = { imapdConf: '/m/imapd.conf', metaPath: '/m' };
  const deps = (over: Partial<FullSyncDeps> & { logged?: string[][] } = {}): FullSyncDeps => ({
    listMailboxes: async () => ['user.ann', 'user.ann.Later', 'user.ben'],
    logSync: async (_conf, users, mailboxes) => {
      over.logged?.push([...users], [...mailboxes]);
    },
    room: async () => ({ bytes: 10 * MIN_FREE_BYTES, inodes: 1000 }),
    settleMs: 0,
    catchUp: async () => undefined,
    mayClear: () => true,
    ...over,
  });

  it('logs every user and mailbox, then clears the mark', async () => {
    const store = newStore();
    await store.mark('s1', 3, 'x');
    const logged: string[][] = [];
    expect(await logFullSync(store, 's1', layout, deps({ logged }))).toEqual({ done: true, users: 2, mailboxes: 3 });
    expect(logged).toEqual([['ann', 'ben'], ['user.ann', 'user.ann.Later', 'user.ben']]);
    expect(store.get('s1')).toBeUndefined();
  });

  it('does not try while the meta partition has no room, and keeps the mark', async () => {
    const store = newStore();
    await store.mark('s1', 3, 'x');
    const logged: string[][] = [];
    const r = await logFullSync(store, 's1', layout, deps({ logged, room: async () => ({ bytes: 4096, inodes: 1000 }) }));
    expect(r).toEqual({ done: false, why: expect.stringContaining('/m has 4096 bytes and 1000 inodes free (1049344 bytes and 10 inodes needed to log a sync of 3 mailbox(es))') });
    expect(await logFullSync(store, 's1', layout, deps({ logged, room: async () => ({ bytes: 1e9, inodes: 3 }) }))).toMatchObject({ done: false });
    expect(logged).toEqual([]);
    expect(store.get('s1')).toBeDefined();
  });

  it('keeps the mark when a write failed again while the sync was being logged', async () => {
    const store = newStore();
    await store.mark('s1', 3, 'x');
    const r = await logFullSync(store, 's1', layout, deps({ logSync: async () => void store.mark('s1', 3, 'our own line failed') }));
    expect(r).toEqual({ done: false, why: expect.stringContaining('failed again') });
    expect(store.get('s1')?.lines).toBe(2);
  });

  it('reads the log up to now before deciding, and does not clear the mark of a slot being demoted', async () => {
    const store = newStore();
    await store.mark('s1', 3, 'x');
    // a failed write the follower had not read yet is counted before the decision
    let late = true;
    const catchUp = async () => {
      if (late) store.mark('s1', 3, 'read late');
      late = false;
    };
    expect(await logFullSync(store, 's1', layout, deps({ catchUp }))).toMatchObject({ done: true });
    await store.mark('s1', 3, 'x');
    expect(await logFullSync(store, 's1', layout, deps({ mayClear: () => false }))).toEqual({ done: false, why: expect.stringContaining('being demoted') });
    expect(store.get('s1')).toBeDefined();
  });

  it('keeps the mark when logging fails', async () => {
    const store = newStore();
    await store.mark('s1', 3, 'x');
    await expect(logFullSync(store, 's1', layout, deps({ logSync: async () => Promise.reject(new Error('cyr_synclog -u ann exited 75')) }))).rejects.toThrow('exited 75');
    expect(store.get('s1')).toBeDefined();
  });
});
