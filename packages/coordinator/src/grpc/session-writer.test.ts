import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteTransaction } from '../db/sqlite/index.js';
import { SessionWriter } from './session-writer.js';

describe('SessionWriter', () => {
  let db: Database.Database;
  const errors: unknown[] = [];
  beforeEach(() => {
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    errors.length = 0;
  });
  afterEach(() => db.close());
  const count = () => (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
  const insert = (k: string, v = 0) => () => db.prepare('INSERT INTO t VALUES (?, ?)').run(k, v);
  const turn = () => new Promise((r) => setImmediate(r));
  // no time budget to run out on a busy test host, except where the budget is what is tested
  const unbounded = { budgetMs: Number.POSITIVE_INFINITY };

  it('commits a turn of heartbeats in one transaction and calls back only after the commit', async () => {
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), unbounded);
    const seen: number[] = [];
    for (let i = 0; i < 100; i++) {
      w.heartbeat(insert(`k${i}`), (err) => {
        expect(err).toBeUndefined();
        seen.push(count()); // the whole batch is visible: the commit came first
      });
    }
    expect(count()).toBe(0);
    await turn();
    expect(w.batches).toBe(1);
    expect(seen).toEqual(Array(100).fill(100));
  });

  it('rolls back a failing write alone and tells it', async () => {
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), unbounded);
    const results: string[] = [];
    w.enqueue(insert('a', 1), (err) => results.push(err ? 'a failed' : 'a ok'));
    w.enqueue(() => {
      insert('b', 2)();
      insert('a', 3)(); // duplicate key: this write fails, and 'b' with it
    }, (err) => results.push(err ? 'b failed' : 'b ok'));
    w.enqueue(insert('c', 4), (err) => results.push(err ? 'c failed' : 'c ok'));
    await turn();
    expect(results).toEqual(['a ok', 'b failed', 'c ok']);
    expect(db.prepare('SELECT k FROM t ORDER BY k').all()).toEqual([{ k: 'a' }, { k: 'c' }]);
    expect(errors).toEqual([]);
  });

  it('writes what is queued on close and nothing after: a deposed leader closes its database next', async () => {
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), unbounded);
    const results: string[] = [];
    w.enqueue(insert('a'), (err) => results.push(err ? 'a refused' : 'a ok'));
    w.close();
    db.close();
    w.heartbeat(insert('b'), (err) => results.push(err ? `b ${(err as Error).name}` : 'b ok'));
    w.enqueue(insert('c'), (err) => results.push(err ? `c ${(err as Error).name}` : 'c ok'));
    await turn();
    expect(results).toEqual(['a ok', 'b WriterClosed', 'c WriterClosed']);
    expect(errors, 'the closed database was never touched').toEqual([]);
    db = new Database(':memory:'); // for afterEach
  });

  it('acknowledges no heartbeat of a batch whose transaction fails', async () => {
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), unbounded);
    const results: boolean[] = [];
    w.heartbeat(insert('a'), (err) => results.push(!err));
    w.heartbeat(() => db.prepare('INSERT INTO nope VALUES (1)').run(), (err) => results.push(!err));
    await turn();
    expect(results).toEqual([false, false]);
    expect(count()).toBe(0);
    expect(errors).toHaveLength(1);
  });

  it('writes every heartbeat each turn but other writes only for its budget: a burst of reports delays no acknowledgement', async () => {
    let clock = 0;
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), { budgetMs: 10, now: () => clock });
    const order: string[] = [];
    for (let i = 0; i < 10; i++) {
      w.enqueue(() => {
        clock += 4; // each report takes 4 ms: three fit in a turn of 10 ms
        insert(`r${i}`)();
      }, () => order.push(`r${i}`));
    }
    w.heartbeat(insert('h1'), () => order.push('h1'));
    await turn();
    expect(order).toEqual(['h1', 'r0', 'r1', 'r2']);
    expect(w.backlog).toBe(7);
    w.heartbeat(insert('h2'), () => order.push('h2'));
    await turn();
    expect(order.slice(4)).toEqual(['h2', 'r3', 'r4', 'r5']);
    while (w.backlog) await turn();
    expect(count()).toBe(12);
  });

  it('writes everything queued when asked to (shutdown)', () => {
    let clock = 0;
    const w = new SessionWriter({ transaction: sqliteTransaction(db) }, (e) => errors.push(e), { budgetMs: 1, now: () => clock });
    for (let i = 0; i < 5; i++) w.enqueue(() => { clock += 5; insert(`r${i}`)(); }, () => undefined);
    w.flush(true);
    expect(count()).toBe(5);
    expect(w.backlog).toBe(0);
  });
});
