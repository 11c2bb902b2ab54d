import { describe, expect, it } from 'vitest';
import { readCleanupConfig } from './config.js';
import { FirstTurns } from './first-turns.js';

const MIN = 60_000;
const config = readCleanupConfig(undefined);
// a turn a fixed time after the slot was seen: s1 10 minutes, s2 20, s3 30
const turns = () => new FirstTurns((seen, _c, slot) => seen + Number(slot.slice(1)) * 10 * MIN);
const iso = (ms: number) => new Date(ms).toISOString();

describe('FirstTurns', () => {
  it('answers which first turns came, in order, each slot counted from its first sighting', () => {
    const t = turns();
    t.see('s2', 0, config);
    t.see('s1', 0, config);
    t.see('s3', 5 * MIN, config);
    t.see('s1', 30 * MIN, config); // seen again: its turn stays
    expect(t.dueBy(iso(9 * MIN), config)).toEqual([]);
    expect(t.dueBy(iso(10 * MIN), config)).toEqual(['s1']);
    expect(t.dueBy(iso(34 * MIN), config).sort()).toEqual(['s1', 's2']);
    expect(t.dueBy(iso(35 * MIN), config).sort()).toEqual(['s1', 's2', 's3']);
  });

  it('keeps a due slot due until it is forgotten (cleaned once)', () => {
    const t = turns();
    t.see('s1', 0, config);
    expect(t.dueBy(iso(11 * MIN), config)).toEqual(['s1']);
    expect(t.dueBy(iso(12 * MIN), config)).toEqual(['s1']);
    t.forget('s1');
    expect(t.dueBy(iso(13 * MIN), config)).toEqual([]);
  });

  it('tells a slot its turn, seeing it then if it was not seen', () => {
    const t = turns();
    expect(t.at('s2', 3 * MIN, config)).toBe(iso(23 * MIN));
    expect(t.at('s2', 9 * MIN, config)).toBe(iso(23 * MIN));
  });

  it('computes every turn again under a new policy', () => {
    let shift = 0;
    const t = new FirstTurns((seen) => seen + 10 * MIN + shift);
    t.see('a', 0, config);
    expect(t.dueBy(iso(10 * MIN), config)).toEqual(['a']);
    shift = 60 * MIN;
    const other = readCleanupConfig(JSON.stringify({ window: '01:00-02:00' }));
    expect(t.dueBy(iso(10 * MIN), other)).toEqual([]);
    expect(t.dueBy(iso(70 * MIN), other)).toEqual(['a']);
  });
});
