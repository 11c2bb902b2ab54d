import { describe, expect, it } from 'vitest';
import { mayServeMaster, saysFenced } from './serve-gate.js';

describe('mayServeMaster', () => {
  it('serves while the lease is held and no lapse is pending', () => {
    expect(mayServeMaster({ holds: true, lapses: 0, lapsesHandled: 0, unconfirmed: false })).toBe(true);
    expect(mayServeMaster({ holds: false, lapses: 0, lapsesHandled: 0, unconfirmed: false })).toBe(false);
  });
  it('does not serve on a renewed deadline while the lapse before it is not handled yet (the SIGSTOP race)', () => {
    // the thread counted a lapse, then a renewal was acknowledged: the deadline says held, the main thread has not
    // handled `lost` yet, so `unconfirmed` is still false
    expect(mayServeMaster({ holds: true, lapses: 1, lapsesHandled: 0, unconfirmed: false })).toBe(false);
    expect(saysFenced({ holds: true, lapses: 1, lapsesHandled: 0, unconfirmed: false, everHeld: true })).toBe(true);
  });
  it('after the lapse is handled, waits for the coordinator\'s confirmation', () => {
    expect(mayServeMaster({ holds: true, lapses: 1, lapsesHandled: 1, unconfirmed: true })).toBe(false);
    expect(mayServeMaster({ holds: true, lapses: 1, lapsesHandled: 1, unconfirmed: false })).toBe(true);
    expect(saysFenced({ holds: true, lapses: 1, lapsesHandled: 1, unconfirmed: false, everHeld: true })).toBe(false);
  });
  it('an agent that never held a lease is not fenced', () => {
    expect(saysFenced({ holds: false, lapses: 0, lapsesHandled: 0, unconfirmed: false, everHeld: false })).toBe(false);
  });
});
