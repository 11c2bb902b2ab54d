import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafePathError } from '@slotctl/shared';
import { SafeDir, using } from './safe-fs.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
let outside: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'safe-fs-'));
  outside = mkdtempSync(join(tmpdir(), 'safe-fs-target-'));
  writeFileSync(join(outside, 'secret'), 'root only\n', { mode: 0o600 });
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('SafeDir: acting below a directory without following links', () => {
  it('creates the directories of a path step by step', async () => {
    await using(SafeDir.open(dir), (root) => using(root.walk('a/b/c', { mode: 0o750 }), async (c) => expect(c.path).toBe(join(dir, 'a/b/c'))));
    expect(statSync(join(dir, 'a/b/c')).isDirectory()).toBe(true);
    expect(statSync(join(dir, 'a/b/c')).mode & 0o777).toBe(0o750);
  });

  it('refuses a symlink on the way, naming it, and creates nothing where it points', async () => {
    mkdirSync(join(dir, 'a'));
    symlinkSync(outside, join(dir, 'a', 'b'));
    const err = await using(SafeDir.open(dir), (root) => root.walk('a/b/c', { mode: 0o750 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as UnsafePathError).path).toBe(join(dir, 'a', 'b'));
    expect((err as Error).message).toMatch(new RegExp(`${join(dir, 'a', 'b')} is a symlink`));
    expect((err as UnsafePathError).hint).toMatch(/rm /);
    expect(readdirSync(outside)).toEqual(['secret']);
  });

  it('refuses a root that is itself a symlink', async () => {
    symlinkSync(outside, join(dir, 'link'));
    await expect(SafeDir.open(join(dir, 'link'))).rejects.toThrow(/is a symlink/);
  });

  it('refuses a file where a directory should be', async () => {
    writeFileSync(join(dir, 'f'), '');
    await expect(using(SafeDir.open(dir), (root) => root.dir('f'))).rejects.toThrow(/is not a directory/);
  });

  it('writes a file with exactly its mode, and replaces a link at its name instead of writing through it', async () => {
    symlinkSync(join(outside, 'secret'), join(dir, 'conf'));
    await using(SafeDir.open(dir), (root) => root.writeFile('conf', 'new\n', 0o640));
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('root only\n');
    expect(lstatSync(join(dir, 'conf')).isFile()).toBe(true);
    expect(statSync(join(dir, 'conf')).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['conf']); // no temporary file left
  });

  it('reads a file, but not through a link', async () => {
    writeFileSync(join(dir, 'plain'), 'hello');
    symlinkSync(join(outside, 'secret'), join(dir, 'link'));
    await using(SafeDir.open(dir), async (root) => {
      expect(await root.readFile('plain')).toBe('hello');
      await expect(root.readFile('link')).rejects.toBeInstanceOf(UnsafePathError);
    });
  });

  it('moves and removes entries through open directories', async () => {
    mkdirSync(join(dir, 'from'));
    mkdirSync(join(dir, 'to'));
    writeFileSync(join(dir, 'from', 'log'), 'x');
    symlinkSync(join(outside, 'secret'), join(dir, 'from', 'link'));
    await using(SafeDir.open(dir), async (root) => {
      const [from, to] = [await root.dir('from'), await root.dir('to')];
      await from.move('log', to, '000-log');
      await from.remove('link'); // the link goes, not what it points to
      expect(await to.list()).toEqual(['000-log']);
      await from.close();
      await to.close();
    });
    expect(readdirSync(join(dir, 'from'))).toEqual([]);
    expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('root only\n');
  });

  it('rejects a name that is not one path component', async () => {
    await using(SafeDir.open(dir), async (root) => {
      expect(() => root.at('../x')).toThrow(/not one path component/);
      expect(() => root.at('a/b')).toThrow(/not one path component/);
    });
  });

  it.runIf(isRoot)('gives a created directory its owner on the descriptor; a link to a root-owned one is not chowned', async () => {
    symlinkSync(outside, join(dir, 'run'));
    const owner = { uid: 65534, gid: 65534 };
    await using(SafeDir.open(dir), async (root) => {
      await using(root.dir('etc', { mode: 0o750, owner }), async () => undefined);
      await expect(root.dir('run', { mode: 0o750, owner })).rejects.toThrow(/run is a symlink/);
    });
    expect(statSync(join(dir, 'etc'))).toMatchObject({ uid: 65534, gid: 65534 });
    expect(statSync(outside)).toMatchObject({ uid: 0, gid: 0 });
    expect(statSync(join(outside, 'secret'))).toMatchObject({ uid: 0, gid: 0 });
  });
});
