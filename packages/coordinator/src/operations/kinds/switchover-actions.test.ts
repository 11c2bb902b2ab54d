// The switchover's hold and replay actions on a real database: what the old master's desired state carries.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyCluster } from '../../cluster/apply.js';
import { openDatabase } from '../../db/open.js';
import { sqliteStorage } from '../../db/sqlite/index.js';
import type { Storage } from '../../db/storage.js';
import type { KindContext } from '../framework/kind.js';
import { SWITCHOVER, createSwitchover, type SwitchoverView } from './switchover.js';
import { kindContext } from '../rows.fixture.js';

const CLUSTER = {
  machines: ['m1', 'm2'].map((name, i) => ({ name, address: `127.0.9.${i + 1}` })),
  stores: [{ name: 's1', service_ip: '127.0.8.1', master: 'm1', slots: [{ machine: 'm1', ip: '127.0.7.1', data_path: '/srv/s1/a/d', meta_path: '/srv/s1/a/m' }, { machine: 'm2', ip: '127.0.7.2', data_path: '/srv/s1/b/d', meta_path: '/srv/s1/b/m' }] }],
};

describe('switchover actions', () => {
  let dir: string;
  let db: Database.Database;
  let storage: Storage;
  let pushed: string[][];
  let ctx: KindContext;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-switchover-'));
    db = openDatabase(join(dir, 'c.db'));
    storage = sqliteStorage(db);
    expect(applyCluster(storage, JSON.stringify(CLUSTER), { dryRun: false, prune: false, source: 'test' }).problems).toEqual([]);
    pushed = [];
    ctx = kindContext(storage, { push: (machines) => void pushed.push([...machines]), connected: () => new Set(['m1', 'm2']) });
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const view = (id: string) => SWITCHOVER.view(storage.operations.get(id)!, ctx) as SwitchoverView;

  it('holds the old master and asks it to replay in the same desired state; the replay step then sends nothing more', () => {
    const id = createSwitchover(ctx, 's1');
    const master = storage.stores.get('s1')!.masterSlot;
    SWITCHOVER.actions['hold-old-master'](view(id), ctx);
    const held = storage.slots.get(master)!;
    expect(held.opHold).toBe(id);
    expect(held.requests.replay?.id).toBe(id);
    expect(pushed).toEqual([['m1']]);
    expect(storage.events.list({ limit: 10 }).map((e) => e.kind)).toContain('slot.replay-requested');

    // the step after the stop: the request is there already, so no second push and no second event
    const events = storage.events.list({ limit: 100 }).length;
    SWITCHOVER.actions['request-replay'](view(id), ctx);
    expect(pushed).toEqual([['m1']]);
    expect(storage.events.list({ limit: 100 }).length).toBe(events);
  });

  it('still asks for the replay at its step when the hold did not (a request withdrawn meanwhile)', () => {
    const id = createSwitchover(ctx, 's1');
    const master = storage.stores.get('s1')!.masterSlot;
    SWITCHOVER.actions['hold-old-master'](view(id), ctx);
    storage.requests.withdraw(master, 'replay');
    SWITCHOVER.actions['request-replay'](view(id), ctx);
    expect(storage.slots.get(master)!.requests.replay?.id).toBe(id);
    expect(pushed).toEqual([['m1'], ['m1']]);
  });

  it('leaves no replay request behind: not after a rollback (A may never have run it), not after the flip', () => {
    const rolledBack = createSwitchover(ctx, 's1');
    const master = storage.stores.get('s1')!.masterSlot;
    SWITCHOVER.actions['hold-old-master'](view(rolledBack), ctx);
    SWITCHOVER.actions['release-hold'](view(rolledBack), ctx);
    expect(storage.slots.get(master)!.opHold).toBe('');
    expect(storage.slots.get(master)!.requests.replay?.id ?? '').toBe('');
    storage.operations.advance(storage.operations.get(rolledBack)!, { to: 'rolled-back', state: 'failed', reason: 'test', rule: 'test' });

    const flipped = createSwitchover(ctx, 's1');
    SWITCHOVER.actions['hold-old-master'](view(flipped), ctx);
    SWITCHOVER.actions.flip(view(flipped), ctx);
    expect(storage.stores.get('s1')!.masterSlot).not.toBe(master);
    expect(storage.slots.get(master)!.requests.replay?.id ?? '').toBe('');
  });
});
