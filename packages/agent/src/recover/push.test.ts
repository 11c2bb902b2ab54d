import { describe, expect, it } from 'vitest';
import { deletedSinceFailover, ownerOf, removedThere } from './push.js';

describe('ownerOf', () => {
  it('names the owner of a mailbox, a delayed-deleted one too', () => {
    expect(ownerOf('user.bob')).toBe('bob');
    expect(ownerOf('user.bob.Work')).toBe('bob');
    expect(ownerOf('user.bob^smith.Sent')).toBe('bob.smith');
    expect(ownerOf('DELETED.user.s04a.Work.6B13AEB4')).toBe('s04a');
  });
  it('is undefined for a mailbox that is not a user\'s', () => {
    expect(ownerOf('shared.news')).toBeUndefined();
    expect(ownerOf('DELETED.shared.x.5F')).toBeUndefined();
  });
});

const G = (n: number) => String(n).repeat(40).slice(0, 40);
const here = { name: 'user.s02a.Work', uniqueid: 'u-old', guids: [G(1), G(2)] };
const copy = (uniqueid: string, guids: string[]) => ({ name: `DELETED.user.s02a.Work.6B16B06B`, uniqueid, guids });

describe('removedThere', () => {
  it('is what the new master expunged, and the messages of its deleted copies of this very mailbox (same uniqueid)', () => {
    const there = { expungedGuids: [G(3)], deleted: [copy('u-old', [G(1)]), copy('u-other', [G(2)])] };
    expect([...removedThere('u-old', there)].sort()).toEqual([G(1), G(3)]);
    // another mailbox of the same name was deleted there: it says nothing of this one's messages
    expect([...removedThere('u-new', there)]).toEqual([G(3)]);
    // no uniqueid known: no copy is this mailbox
    expect([...removedThere('', there)]).toEqual([G(3)]);
    expect(removedThere('u-old', undefined).size).toBe(0);
  });
});

describe('deletedSinceFailover', () => {
  it('is not made again when the new master held it and its user deleted it with every message it has here (seed 12914)', () => {
    const r = deletedSinceFailover(here, { exists: false, expungedGuids: [], deleted: [copy('u-old', [G(1), G(2)])] });
    expect(r).toMatchObject({ result: 'nothing', messages: 2, missing: 0 });
    expect(r!.detail).toMatch(/deleted on the new master after the failover \(DELETED\.user\.s02a\.Work\.6B16B06B\), with the 2 message\(s\) it has here: not made again/);
  });
  it('is made again for a message the new master never had (changed here just before the failover)', () => {
    const r = deletedSinceFailover(here, { exists: false, expungedGuids: [], deleted: [copy('u-old', [G(1)])] });
    expect(r).toMatchObject({ result: 'clash', messages: 2 });
    expect(r!.detail).toMatch(/made again for 1 message\(s\) the new master never had/);
  });
  it('is not this case when the new master holds the name, never had this mailbox, or did not answer with copies', () => {
    expect(deletedSinceFailover(here, { exists: true, expungedGuids: [], deleted: [copy('u-old', [G(1)])] })).toBeUndefined();
    // only another mailbox of the name deleted there (one never replicated from here: seed 3274726004)
    expect(deletedSinceFailover(here, { exists: false, expungedGuids: [], deleted: [copy('u-other', [G(1), G(2)])] })).toBeUndefined();
    expect(deletedSinceFailover(here, { exists: false, expungedGuids: [], deleted: [] })).toBeUndefined();
    expect(deletedSinceFailover(here, undefined)).toBeUndefined();
  });
});
