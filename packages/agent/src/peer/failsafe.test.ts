import { describe, expect, it } from 'vitest';
import type { ApplyPlan, AppliedSlot } from '../state/apply-plan.js';
import { cappedPromise, FailsafeLedger, PromiseBook, promiseFor, withholdPromotions } from './failsafe.js';

describe('FailsafeLedger', () => {
  it('holds only while every partner has a live promise, until the earliest ends less the margin', () => {
    const f = new FailsafeLedger(1000);
    expect(f.deadline([], 0)).toBeUndefined();
    f.record('b', { sentAt: 100, reachable: false, promisedMs: 5000, askedMs: 5000 });
    expect(f.deadline(['b', 'c'], 200)).toBeUndefined(); // c never promised
    f.record('c', { sentAt: 300, reachable: false, promisedMs: 5000, askedMs: 5000 });
    expect(f.deadline(['b', 'c'], 400)).toBe(4100);
    expect(f.deadline(['b', 'c'], 4100)).toBeUndefined(); // b's ran out
  });

  it('keeps a promise until it ends when the partner later reaches the coordinator (no new promise, no early end)', () => {
    const f = new FailsafeLedger(1000);
    f.record('b', { sentAt: 1000, reachable: false, promisedMs: 5000, askedMs: 5000 });
    f.record('b', { sentAt: 2000, reachable: true, promisedMs: 0, askedMs: 5000 });
    expect(f.deadline(['b'], 2100)).toBe(5000);
    f.record('b', { sentAt: 500, reachable: false, promisedMs: 5000, askedMs: 5000 }); // an older promise answered late: the later end stands
    expect(f.deadline(['b'], 2100)).toBe(5000);
    expect(f.deadline(['b'], 5000)).toBeUndefined();
  });

  it('counts a promise from a partner that reaches a coordinator in its restart grace', () => {
    const f = new FailsafeLedger(1000);
    f.record('b', { sentAt: 1000, reachable: true, promisedMs: 3000, askedMs: 5000 });
    expect(f.deadline(['b'], 1100)).toBe(3000);
  });

  it("believes a promise no longer than this agent's own lease: a spoofed 2^32-1 ms one ends with the lease", () => {
    const f = new FailsafeLedger(1000);
    f.record('b', { sentAt: 1000, reachable: false, promisedMs: 0xffffffff, askedMs: 5000 });
    expect(f.deadline(['b'], 1100)).toBe(5000); // 1000 + 5000 - margin 1000
    expect(f.deadline(['b'], 5000)).toBeUndefined();
    expect(cappedPromise({ promisedMs: 0xffffffff, askedMs: 5000 })).toBe(5000);
    expect(cappedPromise({ promisedMs: 3000, askedMs: 5000 })).toBe(3000);
    for (const promisedMs of [0, -1, Number.NaN]) expect(cappedPromise({ promisedMs, askedMs: 5000 })).toBe(0);
  });

  it('forgets the promises of machines that are no longer partners', () => {
    const f = new FailsafeLedger(1000);
    f.record('b', { sentAt: 1000, reachable: false, promisedMs: 5000, askedMs: 5000 });
    f.record('c', { sentAt: 1000, reachable: false, promisedMs: 5000, askedMs: 5000 });
    f.retain(new Set(['c']));
    expect(f.deadline(['b'], 1100)).toBeUndefined();
    expect(f.deadline(['c'], 1100)).toBe(5000);
  });
});

describe('PromiseBook', () => {
  it('keeps a live promise and drops ended ones when it gives the next', () => {
    const book = new PromiseBook();
    book.give('a', 0, 5000);
    book.give('b', 0, 1000);
    expect(book.activeUntil('a', 2000)).toBe(5000);
    expect(book.activeUntil('b', 2000)).toBeUndefined();
    book.give('c', 2000, 1000);
    expect(book.size).toBe(2); // b's ended
  });
});

describe('promiseFor (the partner)', () => {
  const ask = { holds: true, promiseMs: 5000 };
  it('promises when it cannot reach the coordinator either, no longer than it may', () => {
    expect(promiseFor(ask, { reachable: false, graceUntil: undefined, maxMs: 5000 }, 0)).toBe(5000);
    expect(promiseFor({ holds: true, promiseMs: 8000 }, { reachable: false, graceUntil: undefined, maxMs: 5000 }, 0)).toBe(5000);
  });

  it('does not when it reaches a coordinator that may promote, so that the coordinator decides', () => {
    expect(promiseFor(ask, { reachable: true, graceUntil: undefined, maxMs: 5000 }, 0)).toBe(0);
  });

  it("promises through a just-started coordinator's grace, and not a moment beyond it", () => {
    expect(promiseFor(ask, { reachable: true, graceUntil: 10_000, maxMs: 5000 }, 1000)).toBe(5000);
    expect(promiseFor(ask, { reachable: true, graceUntil: 10_000, maxMs: 5000 }, 7000)).toBe(3000);
    expect(promiseFor(ask, { reachable: true, graceUntil: 10_000, maxMs: 5000 }, 10_000)).toBe(0);
  });

  it('never promises to an asker whose masters were fenced: its stores may have failed over', () => {
    expect(promiseFor({ holds: false, promiseMs: 5000 }, { reachable: false, graceUntil: undefined, maxMs: 5000 }, 0)).toBe(0);
    expect(promiseFor({ holds: false, promiseMs: 5000 }, { reachable: true, graceUntil: 10_000, maxMs: 5000 }, 0)).toBe(0);
  });
});

describe('withholdPromotions', () => {
  const slot = (role: 'MASTER' | 'REPLICA', epoch: number): AppliedSlot => ({ store: 'n1', role, epoch, slotIp: '10.0.0.1', serviceIp: '10.0.0.9', peerSlot: 'p', peerIp: '10.0.0.2', dataPath: '/d', metaPath: '/m' });
  const plan = (): ApplyPlan => ({ results: [{ slot: 'x', result: 'CHANGED', detail: '' }], next: { x: slot('MASTER', 2) }, removed: [] });

  it('refuses a promotion against a machine it promised to, keeping what was applied, and lets it through after', () => {
    const book = new PromiseBook();
    book.give('a', 0, 5000);
    const p = plan();
    expect(withholdPromotions(p, { x: slot('REPLICA', 1) }, () => 'a', book, 1000)).toEqual([{ slot: 'x', machine: 'a', until: 5000 }]);
    expect(p.results[0]).toMatchObject({ result: 'REFUSED' });
    expect(p.next.x).toMatchObject({ role: 'REPLICA', epoch: 1 });
    const later = plan();
    expect(withholdPromotions(later, { x: slot('REPLICA', 1) }, () => 'a', book, 5000)).toEqual([]);
    expect(later.next.x).toMatchObject({ role: 'MASTER', epoch: 2 });
  });

  it('leaves promotions against other machines alone', () => {
    const book = new PromiseBook();
    book.give('a', 0, 5000);
    const p = plan();
    expect(withholdPromotions(p, { x: slot('REPLICA', 1) }, () => 'b', book, 1000)).toEqual([]);
    expect(p.results[0]!.result).toBe('CHANGED');
  });
});
