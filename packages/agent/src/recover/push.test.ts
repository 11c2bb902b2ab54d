import { describe, expect, it } from 'vitest';
import { ownerOf } from './push.js';

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
