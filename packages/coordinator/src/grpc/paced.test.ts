import { describe, expect, it } from 'vitest';
import { Paced, StormWatch } from './paced.js';

const turn = () => new Promise((r) => setImmediate(r));

describe('Paced', () => {
  it('does a slice of work per turn, at least one item, the rest on later turns', async () => {
    let clock = 0;
    const done: string[] = [];
    const p = new Paced({ budgetMs: 10, now: () => clock }, () => undefined);
    for (let i = 0; i < 7; i++) p.add(`m${i}`, () => {
      clock += 4; // three fit in 10 ms
      done.push(`m${i}`);
    });
    await turn();
    expect(done).toEqual(['m0', 'm1', 'm2']);
    await turn();
    expect(done).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    await turn();
    expect(done).toHaveLength(7);
    expect(p.size).toBe(0);
  });

  it('keeps one entry per key, the newest, at the back', async () => {
    const done: string[] = [];
    const p = new Paced({ budgetMs: 1000 }, () => undefined);
    p.add('a', () => done.push('a1'));
    p.add('b', () => done.push('b'));
    p.add('a', () => done.push('a2'));
    await turn();
    expect(done).toEqual(['b', 'a2']);
  });

  it('keeps an entry that must wait, and those behind it, until its time', async () => {
    let clock = 0;
    const done: string[] = [];
    const p = new Paced({ budgetMs: 1000, now: () => clock }, () => undefined);
    p.add('a', () => done.push('a'));
    p.add('b', () => done.push('b'), 50);
    p.add('c', () => done.push('c'));
    await turn();
    expect(done).toEqual(['a']);
    clock = 50;
    p.drain();
    expect(done).toEqual(['a', 'b', 'c']);
    p.cancel();
  });

  it('reports a failing item and goes on with the others', async () => {
    const errors: string[] = [];
    const done: string[] = [];
    const p = new Paced({ budgetMs: 1000 }, (key) => errors.push(key));
    p.add('a', () => {
      throw new Error('no');
    });
    p.add('b', () => done.push('b'));
    await turn();
    expect(errors).toEqual(['a']);
    expect(done).toEqual(['b']);
  });
});

describe('StormWatch', () => {
  it('says storm while more than the rate arrived in the last second or so, and calms down after', () => {
    const w = new StormWatch(3);
    expect([w.hello(0), w.hello(100), w.hello(200)]).toEqual([false, false, false]);
    expect(w.hello(300)).toBe(true);
    expect(w.hello(1100)).toBe(true); // 4 in the previous second, 1 in this one
    expect(w.hello(2500)).toBe(false); // the storm second is two buckets back
    expect(w.hello(9000)).toBe(false);
  });
});
