import { describe, expect, it } from 'vitest';
import { mailboxOfLine, replayOrder, splitLogLine } from './backlog.js';

describe('sync log lines', () => {
  it('names the mailbox of each kind of line', () => {
    expect(mailboxOfLine('APPEND user.alice')).toBe('user.alice');
    expect(mailboxOfLine('MAILBOX user.bob.Projects')).toBe('user.bob.Projects');
    expect(mailboxOfLine('SUB bob user.bob.Lists')).toBe('user.bob.Lists');
    expect(mailboxOfLine('USER carol')).toBe('user:carol');
    expect(mailboxOfLine('SEEN dave user.dave')).toBe('user:dave');
    expect(mailboxOfLine('')).toBeUndefined();
    expect(mailboxOfLine('NONSENSE x')).toBeUndefined();
  });

  it('honours quoted names', () => {
    expect(splitLogLine('APPEND "user.alice.My Folder"')).toEqual(['APPEND', 'user.alice.My Folder']);
    expect(splitLogLine('APPEND "a \\"quoted\\" name"')).toEqual(['APPEND', 'a "quoted" name']);
  });

  it('replays log-run first, failed runs next, log last', () => {
    expect(replayOrder(['log', 'log-12', 'log-run', 'log-3', 'shutdown', 'log-run.tmp'])).toEqual(['log-run', 'log-3', 'log-12', 'log']);
  });
});
