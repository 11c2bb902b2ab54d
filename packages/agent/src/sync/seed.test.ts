import { describe, expect, it } from 'vitest';
import { internalName, externalName } from '../cyrus/mailboxes.js';
import { seedWork, userOf } from './seed.js';

describe('full initial sync work list', () => {
  it('copies each user once (with a dot in the name), shared mailboxes one by one, never delayed-deleted ones', () => {
    expect(userOf('user.bob^smith.Sent')).toBe('bob.smith');
    expect(userOf('shared.news')).toBeUndefined();
    expect(seedWork(['user.ann', 'user.ann.Projects', 'user.bob^smith', 'shared.news', 'DELETED.user.ann.Old.5F3A'])).toEqual({ users: ['ann', 'bob.smith'], shared: ['shared.news'] });
  });

  it('turns mbexamine names back into internal ones', () => {
    for (const name of ['user.ann', 'user.bob^smith.Sent', 'DELETED.user.ann.Old.5F3A']) expect(internalName(externalName(name))).toBe(name);
  });
});
