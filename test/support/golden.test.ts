// The golden rule in every environment: CI never writes, ignores UPDATE_GOLDEN and fails a missing file.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectGolden, goldenAction } from './golden.js';
import { removeDir, tempDir } from './fixtures.js';

const dir = tempDir('golden');
afterAll(() => removeDir(dir));

describe('golden files', () => {
  it('decides by CI, UPDATE_GOLDEN and whether the file exists', () => {
    const cases: [boolean, NodeJS.ProcessEnv, string][] = [
      [true, { CI: 'true' }, 'compare'],
      [false, { CI: 'true' }, 'fail-missing'],
      [true, { CI: 'true', UPDATE_GOLDEN: '1' }, 'compare'],
      [false, { CI: 'true', UPDATE_GOLDEN: '1' }, 'fail-missing'],
      [false, { CI: '1' }, 'fail-missing'],
      [true, {}, 'compare'],
      [false, {}, 'write-and-fail'],
      [true, { UPDATE_GOLDEN: '1' }, 'write'],
      [false, { UPDATE_GOLDEN: '1', CI: 'false' }, 'write'],
    ];
    for (const [exists, env, want] of cases) expect(goldenAction(exists, env), `${exists} ${JSON.stringify(env)}`).toBe(want);
  });

  it('fails a missing file in CI without writing it, even with UPDATE_GOLDEN=1', () => {
    const path = join(dir, 'missing.txt');
    expect(() => expectGolden(path, 'new\n', { CI: 'true', UPDATE_GOLDEN: '1' })).toThrow(/is missing/);
    expect(existsSync(path)).toBe(false);
  });

  it('compares in CI even with UPDATE_GOLDEN=1, leaving the file as it was', () => {
    const path = join(dir, 'kept.txt');
    writeFileSync(path, 'old\n');
    expect(() => expectGolden(path, 'new\n', { CI: 'true', UPDATE_GOLDEN: '1' })).toThrow();
    expect(readFileSync(path, 'utf8')).toBe('old\n');
  });

  it('outside CI writes a missing file and fails, and rewrites one on UPDATE_GOLDEN=1', () => {
    const path = join(dir, 'local.txt');
    expect(() => expectGolden(path, 'first\n', {})).toThrow(/did not exist: written now/);
    expect(readFileSync(path, 'utf8')).toBe('first\n');
    expectGolden(path, 'first\n', {});
    expectGolden(path, 'second\n', { UPDATE_GOLDEN: '1' });
    expect(readFileSync(path, 'utf8')).toBe('second\n');
  });
});
