// The switchover's hold and replay actions on a real database: what the old master's desired state carries.
import { beforeEach, describe, expect, it } from 'vitest';
import { clusterStorage } from '../../db/cluster-storage.fixture.js';
import type { Storage } from '../../db/storage.js';
import type { KindContext } from '../framework/kind.js';
import { SWITCHOVER, createSwitchover, type SwitchoverView } from './switchover.js';
import { kindContext } from '../rows.fixture.js';

describe('switchover actions', () => {
  const rows = clusterStorage();
  let storage: Storage;
  let pushed: string[][];
  let ctx: KindContext;
  beforeEach(() => {
    storage = rows.storage;
    pushed = [];
    ctx = kindContext(storage, { push: (machines) => void pushed.push([...machines]), connected: () => new Set(['m1', 'm2']) });
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
