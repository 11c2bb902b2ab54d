import { describe, expect, it } from 'vitest';
import { emailIdOf, mailboxOf, ownerAndFolder, temporaryImapdConf } from './imap-copy.js';

describe('ownerAndFolder', () => {
  it('maps an internal mailbox name to its owner and the folder as that owner sees it', () => {
    expect(ownerAndFolder('user.ben')).toEqual({ owner: 'ben', folder: 'INBOX' });
    expect(ownerAndFolder('user.ann.Projects')).toEqual({ owner: 'ann', folder: 'Projects' });
    expect(ownerAndFolder('user.bob^smith.Work.2026')).toEqual({ owner: 'bob.smith', folder: 'Work/2026' });
    expect(() => ownerAndFolder('shared.news')).toThrow(/not a user/);
  });
});

describe('emailIdOf', () => {
  it('is the EMAILID Cyrus 3.6 gives a message of that GUID (seen: FETCH EMAILID against mbexamine)', () => {
    expect(emailIdOf('432ca9b3212f517b0670791c7503650765a7f242')).toBe('M432ca9b3212f517b0670791c');
  });
});

describe('temporaryImapdConf', () => {
  it('is the slot\'s imapd.conf with deletes immediate: a mailbox deleted after its copy must not keep its uniqueid', () => {
    const own = 'configdirectory: /srv/a/meta/conf\ndelete_mode: delayed\nexpunge_mode: delayed\nsync_log: 1\n';
    expect(temporaryImapdConf(own)).toBe('configdirectory: /srv/a/meta/conf\nexpunge_mode: delayed\nsync_log: 1\ndelete_mode: immediate\n');
    expect(temporaryImapdConf('partition-default: /x')).toBe('partition-default: /x\ndelete_mode: immediate\n');
  });
});

describe('mailboxOf', () => {
  it('is the inverse of ownerAndFolder, dots in names included', () => {
    for (const name of ['user.bob^smith', 'user.bob^smith.Projects', 'user.ann.A.B^c', 'user.ann']) {
      const { owner, folder } = ownerAndFolder(name);
      expect(mailboxOf(owner, folder)).toBe(name);
    }
    expect(mailboxOf('ann', 'INBOX')).toBe('user.ann');
  });
});
