import { describe, expect, it } from 'vitest';
import { assertMailbox, assertPath, ipProblem, mailboxProblem, nameProblem, pathProblem } from './validate.js';
import { parseDuration, formatDuration } from './duration.js';
import { ValidationError } from './errors.js';

describe('names, addresses and paths from the network', () => {
  it('accepts plain names and refuses anything that could escape a directory or a command line', () => {
    expect(nameProblem('s01-m1')).toBeUndefined();
    for (const bad of ['', 'S01', '../x', 'a/b', 'a b', '-rf', 'x;rm', 'a'.repeat(64)]) expect(nameProblem(bad)).toBeDefined();
  });

  it('accepts IPv4 and IPv6 only', () => {
    expect(ipProblem('127.0.20.1')).toBeUndefined();
    expect(ipProblem('::1')).toBeUndefined();
    for (const bad of ['127.0.0', '1.2.3.4.5', 'localhost', '127.0.0.1:80']) expect(ipProblem(bad)).toBeDefined();
  });

  it('accepts absolute normal paths and refuses the rest', () => {
    expect(pathProblem('/srv/hdd0/s01/data')).toBeUndefined();
    for (const bad of ['srv/x', '/srv/../etc', '/srv//x', '/srv/./x', '/srv/x/', '/', '/srv/x y', '/srv/$(x)', '/srv/x\n']) {
      expect(pathProblem(bad), bad).toBeDefined();
    }
    expect(() => assertPath('/a/../b', 'data_path')).toThrow(ValidationError);
  });

  it('accepts internal mailbox names and refuses options, control characters and patterns', () => {
    for (const good of ['user.alice', 'user.bob^smith.Sent', 'user:bob', 'shared.Team &AOQ-', 'x'.repeat(1000)]) expect(mailboxProblem(good), good).toBeUndefined();
    for (const bad of ['', '-C/etc/passwd', 'user.a\nb', 'user.a\u0000', '*', 'user.%', 'user.alice.*', 'x'.repeat(1001)]) expect(mailboxProblem(bad), bad).toBeDefined();
    expect(() => assertMailbox('*', 'mailbox')).toThrow(/mailbox: .*pattern/);
  });
});

describe('durations', () => {
  it('parses units and bare milliseconds', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('1.5m')).toBe(90_000);
    expect(parseDuration('1200')).toBe(1200);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });

  it('formats for people', () => {
    expect(formatDuration(900)).toBe('900ms');
    expect(formatDuration(1500)).toBe('1.5s');
    expect(formatDuration(125_000)).toBe('2m5s');
  });
});
