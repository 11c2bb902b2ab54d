import { describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { ServingAuthority } from './authority.js';

const log = createLogger('test', { level: 'silent' });

function authority(opts: { writes?: () => boolean } = {}) {
  let now = 1000;
  const published: (number | undefined)[] = [];
  const events: string[] = [];
  const a = new ServingAuthority({
    publish: (deadline) => {
      const ok = opts.writes ? opts.writes() : true;
      if (ok) published.push(deadline);
      return ok;
    },
    lost: () => events.push('lost'),
    regained: () => events.push('regained'),
    log,
    now: () => now,
  });
  return { a, published, events, at: (t: number) => (now = t) };
}

describe('the serving authority', () => {
  it('holds only once the fence has been told the deadline, and tells it synchronously', () => {
    const { a, published, events } = authority();
    expect(a.holds()).toBe(false);
    a.renewLease(5000);
    expect(published).toEqual([5000]);
    expect(a.holds()).toBe(true);
    expect(events).toEqual(['regained']);
  });

  it('never holds beyond the deadline the fence knows when fence.json cannot be written', () => {
    let ok = true;
    const { a, at } = authority({ writes: () => ok });
    a.renewLease(5000);
    ok = false; // disk full, say
    a.renewLease(9000);
    expect(a.deadline).toBe(9000); // the agent's own count
    at(4999);
    expect(a.holds()).toBe(true);
    at(5000);
    expect(a.holds()).toBe(false); // the fence kills at 5000: the agent does not believe it may serve past it
    expect(a.remaining(6000)).toBe(-1000);
  });

  it('follows a failsafe that ends before the lease: the earlier of its own deadline and the published one', () => {
    let ok = true;
    const { a, at } = authority({ writes: () => ok });
    a.renewLease(3000);
    a.setFailsafe(8000);
    expect(a.holds(7000)).toBe(true);
    ok = false; // the shorter deadline cannot be written: the fence still has 8000, the agent gives up at 3000
    a.setFailsafe(undefined);
    at(3000);
    expect(a.holds()).toBe(false);
  });

  it('takes no failsafe before its first lease', () => {
    const { a } = authority();
    a.setFailsafe(9000);
    expect(a.holds()).toBe(false);
  });

  it('lets promises extend a lease that holds, never revive one that ran out (its stores may have failed over)', () => {
    const { a, at } = authority();
    a.renewLease(3000);
    at(2500);
    a.setFailsafe(6000); // the coordinator restarts; every partner promised before the lease ended
    at(5000);
    expect(a.holds()).toBe(true);
    expect(a.holder).toBe('failsafe (partners promised)');
    a.setFailsafe(undefined); // a partner stopped promising
    at(6500);
    expect(a.holds()).toBe(false);
    a.setFailsafe(9000); // promises again, after the masters were fenced: not taken
    expect(a.holds()).toBe(false);
    expect(a.deadline).toBe(3000);
    a.renewLease(9500); // an acknowledged heartbeat brings them back
    expect(a.holds()).toBe(true);
  });

  it('is not held by an agent that never had a lease', () => {
    const { a } = authority();
    expect(a.remaining()).toBeUndefined();
    expect(a.holds()).toBe(false);
  });
});
