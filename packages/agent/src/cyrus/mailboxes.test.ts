import { describe, expect, it } from 'vitest';
import { externalName, isPlausibleMailbox, parseDeletedCopies, parseGuids, parseMbexamine, parseRecords, parseSha1sum, parseUnexpungeList } from './mailboxes.js';

const SAMPLE = `Examining user/alice... Mailbox Header Info:
  Path to mailbox: /srv/s/data/spool/uuid/1/j/1jfrmf19
  Unique ID: 1jfrmf19wqqvj9s1n57i0bg0
 Index Header Info:
  Number of Messages: 2  Mailbox Size: 1100 bytes  Annotations Size: 0 bytes
  UIDValidity: 1795986898  Last UID: 2
  Highest Mod Sequence: 3

 Message Info:
Desired message not found
Examining user/bob.smith/My Folder... Mailbox Header Info:
  Unique ID: 16z5r6nsyj88aoc8z78tifqp
  Number of Messages: 1  Mailbox Size: 554 bytes  Annotations Size: 0 bytes
  UIDValidity: 1795986899  Last UID: 7
  Highest Mod Sequence: 12
`;

describe('mailbox summaries', () => {
  it('maps internal names to the external names mbexamine takes', () => {
    expect(externalName('user.alice')).toBe('user/alice');
    expect(externalName('user.bob^smith.Sent')).toBe('user/bob.smith/Sent');
    expect(externalName('user:carol')).toBe('user/carol');
  });

  it('parses one block per existing mailbox', () => {
    const parsed = parseMbexamine(SAMPLE);
    expect(parsed.get('user/alice')).toEqual({ uniqueid: '1jfrmf19wqqvj9s1n57i0bg0', messages: 2, uidvalidity: 1795986898, lastUid: 2, highestModseq: 3 });
    expect(parsed.get('user/bob.smith/My Folder')?.highestModseq).toBe(12);
    expect(parsed.size).toBe(2);
  });

  it('refuses names that could be taken for options or carry control characters', () => {
    expect(isPlausibleMailbox('-C/etc/passwd')).toBe(false);
    expect(isPlausibleMailbox('user.a\nb')).toBe(false);
    expect(isPlausibleMailbox('')).toBe(false);
    // mbexamine reads its arguments as patterns
    expect(isPlausibleMailbox('*')).toBe(false);
    expect(isPlausibleMailbox('user.alice')).toBe(true);
  });
});

describe('parseGuids', () => {
  it('lists the GUID of every message record and skips expunged ones', () => {
    const block = [
      'user/alice... Mailbox Header Info:',
      ' Message Info:',
      '000001> UID:00000001   INT_DATE:1795996199 SIZE:556   ',
      '      > HDRSIZE:539    LASTUPD :1795996199 SYSFLAGS:00000000      > CACHEVER:11 GUID:c91fd638012277b73458b1779f16e66d0892b785 MODSEQ:2  THRID: 0',
      '      > INTERNALFLAGS:      > SYSTEMFLAGS:',
      '000001> UID:00000002   INT_DATE:1795996199 SIZE:555   ',
      '      > HDRSIZE:538    LASTUPD :1795996199 SYSFLAGS:00000000      > CACHEVER:11 GUID:b05bce4e454ecf89b4c12d86e9c732db19c1679b MODSEQ:3  THRID: 0',
      '      > INTERNALFLAGS: EXPUNGED      > SYSTEMFLAGS:',
    ].join('\n');
    expect(parseGuids(block)).toEqual(['c91fd638012277b73458b1779f16e66d0892b785']);
    // what a recovery's IMAP copy leaves out: the expunged ones
    expect(parseRecords(block)).toEqual({ live: ['c91fd638012277b73458b1779f16e66d0892b785'], expunged: ['b05bce4e454ecf89b4c12d86e9c732db19c1679b'] });
  });
});

describe('delayed-deleted copies', () => {
  it("takes from one mbexamine run of a name and its DELETED pattern only that name's copies, with their messages", () => {
    const record = (guid: string, flags = '') => ['000001> UID:00000001   INT_DATE:1795996199 SIZE:556   ', `      > HDRSIZE:539    LASTUPD :1795996199 SYSFLAGS:00000000      > CACHEVER:11 GUID:${guid} MODSEQ:2  THRID: 0`, `      > INTERNALFLAGS:${flags}      > SYSTEMFLAGS:`];
    const out = [
      'Examining user/bob/Work... Mailbox Header Info:', '  Unique ID: live-one', ' Message Info:', ...record('a'.repeat(40)),
      'Examining DELETED/user/bob/Work/6A1B2C3D... Mailbox Header Info:', '  Unique ID: old-one', ' Message Info:', ...record('b'.repeat(40)), ...record('c'.repeat(40), ' EXPUNGED'),
      'Examining DELETED/user/bob/Work/6A1B2C40... Mailbox Header Info:', '  Unique ID: older-one', ' Message Info:',
      '',
    ].join('\n');
    expect(parseDeletedCopies(out, 'user.bob.Work')).toEqual([
      { name: 'DELETED.user.bob.Work.6A1B2C3D', uniqueid: 'old-one', guids: ['b'.repeat(40), 'c'.repeat(40)] },
      { name: 'DELETED.user.bob.Work.6A1B2C40', uniqueid: 'older-one', guids: [] },
    ]);
    // the mailbox's own block is not a copy, and another name's copies are not this one's
    expect(parseDeletedCopies(out, 'user.bob.Wor')).toEqual([]);
  });
});

describe('expunged records', () => {
  it('reads the UIDs unexpunge -l lists (Cyrus 3.6 output)', () => {
    const out = ['UID: 1', '\tSize: 354', '\tSent: Sun Dec  6 00:00:00 2026', '\tSubj: "UID: 7"', '', 'UID: 12', '\tSize: 20', ''].join('\n');
    expect(parseUnexpungeList(out)).toEqual([1, 12]);
    expect(parseUnexpungeList('')).toEqual([]);
  });

  it('reads sha1sum lines, paths with spaces too, and nothing of an error', () => {
    const out = 'b3ca53398f9aec08248f7a422f6740732e884091  /srv/s 1/data/uuid/l/e/x/1.\nsha1sum: /srv/x/2.: No such file or directory\n';
    expect([...parseSha1sum(out)]).toEqual([['/srv/s 1/data/uuid/l/e/x/1.', 'b3ca53398f9aec08248f7a422f6740732e884091']]);
  });
});
