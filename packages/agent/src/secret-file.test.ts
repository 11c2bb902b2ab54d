import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SecretFileError, describeError } from '@slotctl/shared';
import { readSecretFile, secretContentProblem } from './secret-file.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'secret-file-'));
  file = join(dir, 'sync-password');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (content: string, mode = 0o600) => {
  writeFileSync(file, content, { mode });
  chmodSync(file, mode); // not the umask's idea of it
};
const refusal = (): SecretFileError => {
  try {
    readSecretFile(file, '--sync-password-file');
  } catch (err) {
    expect(err).toBeInstanceOf(SecretFileError);
    return err as SecretFileError;
  }
  throw new Error('accepted');
};

describe('the replication password file', () => {
  it('accepts a 0600 file with one line, with or without its newline', () => {
    write('correct horse battery staple\n');
    expect(readSecretFile(file, '--sync-password-file')).toBe('correct horse battery staple');
    write('no newline', 0o400);
    expect(readSecretFile(file, '--sync-password-file')).toBe('no newline');
  });

  it('refuses a file group or others may read, naming it and saying how to fix it', () => {
    write('s3cret\n', 0o644);
    const err = refusal();
    expect(err.message).toBe(`--sync-password-file ${file} has mode 0644: group or others may read the replication password`);
    expect(err.hint).toMatch(new RegExp(`^chmod 600 ${file}`));
    write('s3cret\n', 0o640);
    expect(refusal().message).toMatch(/mode 0640/);
  });

  it('refuses control characters other than one trailing newline, without showing the password', () => {
    write('s3cret\r\n');
    const err = refusal();
    expect(err.message).toMatch(/holds \\r \(a carriage return.*\) at character 7/);
    expect(describeError(err)).not.toContain('s3cret');
    write('s3cret\n\n');
    expect(refusal().message).toMatch(/a second line/);
    write('s3c\u0001ret\n');
    expect(refusal().message).toMatch(/control character 0x01 at character 4/);
    write('\n');
    expect(refusal().message).toMatch(/is empty/);
  });

  it('refuses a missing file and one that is not a regular file', () => {
    expect(refusal().message).toMatch(/cannot be read/);
    file = dir;
    expect(refusal().message).toMatch(/is not a regular file/);
  });

  it.runIf(process.getuid?.() === 0)("refuses a file owned by another user than the agent's", () => {
    write('s3cret\n');
    chownSync(file, 65534, 65534);
    expect(refusal().message).toMatch(/owned by uid 65534, not by the agent's user \(uid 0\)/);
    expect(refusal().hint).toBe(`chown root ${file}`);
  });

  it('is checked as pure content too', () => {
    expect(secretContentProblem('a b\tc')).toMatch(/a tab/);
    expect(secretContentProblem('pässwörd\n')).toBeUndefined();
  });
});
