import { describe, expect, it } from 'vitest';
import { Paced } from './paced.js';

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
