import { describe, expect, it } from 'vitest';
import { SLOT_ACTIONS, SLOT_TRANSITIONS, transition, type SlotLifecycle } from './lifecycle.js';

const STATES: SlotLifecycle[] = ['absent', 'configured', 'starting', 'serving', 'stopping', 'stopped', 'failed'];

describe('the slot lifecycle table', () => {
  it('has at most one row for each state and event: the dispatch cannot be ambiguous', () => {
    for (const state of STATES) {
      for (const event of new Set(SLOT_TRANSITIONS.map((t) => t.event))) {
        const rows = SLOT_TRANSITIONS.filter((t) => t.event === event && t.from.includes(state));
        expect(rows.length, `${state} on ${event}`).toBeLessThanOrEqual(1);
      }
    }
  });

  it('names only actions the supervisor runs, and uses every one of them', () => {
    const used = new Set(SLOT_TRANSITIONS.map((t) => t.action));
    expect([...used].sort()).toEqual(Object.keys(SLOT_ACTIONS).sort());
  });

  it('stops a running slot through stopping, and a fenced one at once', () => {
    expect(transition('serving', 'stop')).toMatchObject({ to: 'stopping', action: 'stop-cyrmaster' });
    expect(transition('stopping', 'exited')).toMatchObject({ to: 'stopped', action: 'none' });
    expect(transition('serving', 'fenced')).toMatchObject({ to: 'stopped', action: 'fence' });
    expect(transition('failed', 'stop')).toMatchObject({ to: 'stopped', action: 'none' });
    // a slot that is not running is not stopped again
    expect(transition('stopped', 'stop')).toBeUndefined();
    expect(transition('serving', 'configured')).toBeUndefined();
  });
});
