// The event log as an audit trail and its retention, on a real database: events written during a call carry its
// caller; --who finds the caller's own events and every step of the operations its calls started; old events go,
// except the steps of an operation still running.
import { beforeEach, describe, expect, it } from 'vitest';
import { clusterStorage } from '../cluster-storage.fixture.js';
import { EVENTS_SETTING, eventsKeepMs, pruneEvents } from '../retention.js';
import type { Storage } from '../storage.js';

const DAY = 86_400_000;

describe('events: actors and retention', () => {
  const rows = clusterStorage();
  let storage: Storage;
  beforeEach(() => {
    storage = rows.storage;
  });

  it('attributes what a call writes to its caller, and --who finds it with the steps of the operation it started', () => {
    storage.events.as('alice', () => {
      storage.operations.create({ id: 'op-1', kind: 'switchover', store: 's1', step: 'preflight', params: {}, reason: 'asked' });
      storage.events.append({ kind: 'admin.call', reason: 'alice (operator) called Switchover' });
      storage.events.append({ kind: 'other', reason: 'named its own actor', actor: 'bob' });
    });
    // later steps run outside the call: no actor of their own, found through the operation
    storage.operations.advance(storage.operations.get('op-1')!, { to: 'done', state: 'succeeded', reason: 'finished', rule: 'test' });
    storage.events.append({ kind: 'machine.up', machine: 'm1', reason: 'the cluster itself' });
    const mine = storage.events.list({ who: 'alice', limit: 100 });
    expect(mine.map((e) => [e.kind, e.actor])).toEqual([
      ['operation.started', 'alice'],
      ['admin.call', 'alice'],
      ['operation.succeeded', null],
    ]);
    expect(storage.events.list({ who: 'bob', limit: 100 }).map((e) => e.kind)).toEqual(['other']);
    expect(storage.events.list({ who: 'nobody', limit: 100 })).toEqual([]);
    expect(storage.events.list({ machine: 'm1', limit: 100 }).at(-1)!.actor).toBeNull();
  });

  it('keeps events for 90 days by default, as long as the cluster file says, and the steps of running operations', async () => {
    expect(eventsKeepMs(storage)).toBe(90 * DAY);
    const now = Date.parse('2026-12-01T00:00:00Z');
    const at = (daysAgo: number) => new Date(now - daysAgo * DAY).toISOString();
    storage.events.append({ kind: 'old', reason: 'a year ago' }, at(365));
    storage.events.append({ kind: 'recent', reason: 'last month' }, at(30));
    storage.operations.create({ id: 'op-long', kind: 'drain', machine: 'm1', step: 'moving', params: {}, reason: 'a very long drain' });
    rows.db.prepare("UPDATE events SET at = ? WHERE op = 'op-long'").run(at(200));
    const before = storage.events.list({ limit: 1000 }).length;
    expect(await pruneEvents(storage, now)).toBeGreaterThanOrEqual(1);
    const left = storage.events.list({ limit: 1000 });
    expect(left.map((e) => e.kind)).toEqual(expect.arrayContaining(['recent', 'operation.started']));
    expect(left.map((e) => e.kind)).not.toContain('old');
    expect(left.length).toBeLessThan(before);
    // a shorter retention from the cluster file
    storage.settings.set(EVENTS_SETTING, JSON.stringify({ keep: '7d' }));
    expect(eventsKeepMs(storage)).toBe(7 * DAY);
    await pruneEvents(storage, now);
    expect(storage.events.list({ limit: 1000 }).map((e) => e.kind)).not.toContain('recent');
  });

  it('prunes a large backlog in batches', async () => {
    const insert = rows.db.prepare("INSERT INTO events (at, kind, reason) VALUES ('2020-01-01T00:00:00.000Z', 'x', 'old')");
    rows.db.transaction(() => {
      for (let i = 0; i < 12_000; i++) insert.run();
    })();
    expect(await pruneEvents(storage, Date.parse('2026-12-01T00:00:00Z'))).toBeGreaterThanOrEqual(12_000);
    expect(storage.events.list({ limit: 100_000 }).filter((e) => e.kind === 'x')).toEqual([]);
  });

  it('reads the newest events by default, or the oldest after an id for a reader going through them in order', () => {
    const from = storage.events.list({ limit: 1 })[0]!.id;
    for (let i = 0; i < 5; i++) storage.events.append({ kind: 'tick', reason: String(i) });
    expect(storage.events.list({ afterId: from, limit: 2 }).map((e) => e.reason)).toEqual(['3', '4']);
    expect(storage.events.list({ afterId: from, limit: 2, oldestFirst: true }).map((e) => e.reason)).toEqual(['0', '1']);
  });
});
