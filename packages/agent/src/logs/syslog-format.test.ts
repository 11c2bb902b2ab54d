import { describe, expect, it } from 'vitest';
import { formatLogLine, isNotable, parseSyslog } from './syslog-format.js';

describe('syslog lines from Cyrus', () => {
  it('files a line by the slot in its syslog_prefix', () => {
    const line = parseSyslog('<22>Nov 29 19:18:15 slot-s01-m1/lmtp[13634]: Delivered: <x@y> to mailbox: user.alice');
    expect(line).toEqual({ severity: 6, slot: 's01-m1', program: 'lmtp', pid: 13634, message: 'Delivered: <x@y> to mailbox: user.alice' });
    expect(formatLogLine(line!, new Date('2026-11-29T19:18:15Z'))).toBe('2026-11-29T19:18:15.000Z info lmtp[13634]: Delivered: <x@y> to mailbox: user.alice');
  });

  it('keeps lines without a slot prefix (master before it read its config)', () => {
    expect(parseSyslog('<10>Nov 29 19:24:30 master[14825]: can\'t open configuration file')).toMatchObject({ slot: undefined, program: 'master', severity: 2 });
  });

  it('ignores what is not syslog', () => {
    expect(parseSyslog('hello')).toBeUndefined();
  });

  it('marks replication and I/O errors as notable', () => {
    expect(isNotable('IOERROR: zero length response: command=<RESTART>')).toBe(true);
    expect(isNotable('SYNCERROR: mailbox uniqueid changed')).toBe(true);
    expect(isNotable('write() to /m/conf/sync/log failed: No space left on device')).toBe(true);
    expect(isNotable('Error in do_sync(): bailing out! Bad protocol')).toBe(true);
    expect(isNotable('login: localhost [127.0.0.1] admin PLAIN User logged in')).toBe(false);
  });
});
