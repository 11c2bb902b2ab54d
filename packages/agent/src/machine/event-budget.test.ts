import { describe, expect, it } from 'vitest';
import { EventBudget } from './event-budget.js';

describe('EventBudget', () => {
  it('lets the first events of each window through and reports how many it dropped', () => {
    let now = 0;
    const suppressed: [string, number][] = [];
    const budget = new EventBudget(2, 1000, (slot, n) => suppressed.push([slot, n]), () => now);
    expect([1, 2, 3, 4].map(() => budget.take('a'))).toEqual([true, true, false, false]);
    expect(budget.take('b')).toBe(true); // per slot
    now = 1000;
    expect(budget.take('a')).toBe(true);
    expect(suppressed).toEqual([['a', 2]]);
  });
});
