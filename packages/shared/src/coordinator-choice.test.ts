import { describe, expect, it } from 'vitest';
import { MAX_LEADER_HOPS, electionRetryDelay, isStaleTerm, nextCoordinator, nextForCall } from './coordinator-choice.js';

const list = ['a:7400', 'b:7400', 'c:7400'];

describe('nextCoordinator (the agent)', () => {
  it('goes round robin after a failure, with the backoff', () => {
    expect(nextCoordinator(list, { index: 0, hops: 0 }, { kind: 'failed' })).toMatchObject({ index: 1, hops: 0, wait: 'backoff' });
    // reached through a hint and refused: the named leader has just died, an election is under way
    expect(nextCoordinator(list, { index: 2, hops: 2 }, { kind: 'failed' })).toMatchObject({ index: 0, hops: 0, wait: 'soon' });
  });

  it('stays on a single address', () => {
    expect(nextCoordinator(['a:7400'], { index: 0, hops: 0 }, { kind: 'failed' })).toMatchObject({ index: 0, wait: 'backoff' });
    expect(nextCoordinator(['a:7400'], { index: 0, hops: 0 }, { kind: 'not-leader', leader: 'z:7400' })).toMatchObject({ index: 0, wait: 'backoff' });
    expect(nextCoordinator(['a:7400'], { index: 0, hops: 0 }, { kind: 'not-leader', leader: undefined })).toMatchObject({ index: 0, wait: 'soon' });
  });

  it('follows a hint to a listed leader at once', () => {
    expect(nextCoordinator(list, { index: 0, hops: 0 }, { kind: 'not-leader', leader: 'c:7400' })).toMatchObject({ index: 2, hops: 1, wait: 'now' });
  });

  it('retries soon, at the next address, while no leader is elected', () => {
    expect(nextCoordinator(list, { index: 1, hops: 2 }, { kind: 'not-leader', leader: undefined })).toMatchObject({ index: 2, hops: 0, wait: 'soon' });
  });

  it('takes the next address with the backoff when the leader named is not listed, or is the one just tried', () => {
    expect(nextCoordinator(list, { index: 0, hops: 0 }, { kind: 'not-leader', leader: '10.0.0.9:7400' })).toMatchObject({ index: 1, wait: 'backoff' });
    expect(nextCoordinator(list, { index: 1, hops: 0 }, { kind: 'not-leader', leader: 'b:7400' })).toMatchObject({ index: 2, wait: 'backoff' });
  });

  it('stops two followers that name each other from ping-ponging the agent: a backoff after the hop limit', () => {
    let at = { index: 0, hops: 0 };
    const waits: string[] = [];
    for (let i = 0; i < 2 * (MAX_LEADER_HOPS + 1); i++) {
      const next = nextCoordinator(['a:7400', 'b:7400'], at, { kind: 'not-leader', leader: at.index === 0 ? 'b:7400' : 'a:7400' });
      waits.push(next.wait);
      at = next;
    }
    const once = [...Array<string>(MAX_LEADER_HOPS).fill('now'), 'backoff'];
    expect(waits).toEqual([...once, ...once]);
  });
});

describe('nextForCall (slotctl)', () => {
  it('tries the named leader first, then the others in list order, each once', () => {
    const tried = new Set([0]);
    expect(nextForCall(list, tried, 0, { kind: 'not-leader', leader: 'c:7400' })).toBe(2);
    tried.add(2);
    // the leader moved again and named a: already tried, so the next untried one
    expect(nextForCall(list, tried, 2, { kind: 'not-leader', leader: 'a:7400' })).toBe(1);
    tried.add(1);
    expect(nextForCall(list, tried, 1, { kind: 'failed' })).toBeUndefined();
  });

  it('takes the next address after a failure or an unlisted leader, wrapping round', () => {
    expect(nextForCall(list, new Set([1]), 1, { kind: 'failed' })).toBe(2);
    expect(nextForCall(list, new Set([2]), 2, { kind: 'not-leader', leader: 'elsewhere:1' })).toBe(0);
    expect(nextForCall(list, new Set([2, 0]), 0, { kind: 'not-leader', leader: undefined })).toBe(1);
  });

  it('has nothing more to try with a single address', () => {
    expect(nextForCall(['a:7400'], new Set([0]), 0, { kind: 'not-leader', leader: 'a:7400' })).toBeUndefined();
  });
});

describe('terms', () => {
  it('refuses an older term, never term 0, and takes equal or newer ones', () => {
    expect(isStaleTerm(7, 6)).toBe(true);
    expect(isStaleTerm(7, 7)).toBe(false);
    expect(isStaleTerm(7, 8)).toBe(false);
    expect(isStaleTerm(0, 0)).toBe(false);
    expect(isStaleTerm(7, 0)).toBe(false);
    expect(isStaleTerm(0, 3)).toBe(false);
  });

  it('waits 250–500 ms for an election', () => {
    expect(electionRetryDelay(() => 0)).toBe(250);
    expect(electionRetryDelay(() => 0.999)).toBe(500);
  });
});
