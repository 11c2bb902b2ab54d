import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafePathError } from '@slotctl/shared';
import { changeableBy, openSlotRoot, placementProblem } from './roots.js';

const isRoot = process.getuid?.() === 0;
/** A stand-in for cyrus: any uid that is not ours will do. */
const CYRUS = { uid: 64999, gid: 64998, groups: [64998, 64997] };

describe('where a slot root may be', () => {
  it('must lie under a declared disk, when the machine declares any', () => {
    expect(placementProblem('/srv/d0/s01/meta', ['/srv/d0', '/srv/d1'])).toBeUndefined();
    expect(placementProblem('/srv/d1/s01/data', ['/srv/d0', '/srv/d1'])).toBeUndefined();
    expect(placementProblem('/srv/d2/s01/meta', ['/srv/d0', '/srv/d1'])).toMatch(/not under any disk declared for this machine \(\/srv\/d0, \/srv\/d1\)/);
    // the disk's mount point itself is not a slot root (the slot's directory is given to cyrus)
    expect(placementProblem('/srv/d0', ['/srv/d0'])).toMatch(/not under any disk/);
    expect(placementProblem('/srv/d00/x', ['/srv/d0'])).toMatch(/not under any disk/);
  });

  it('is never a system directory, declared disks or not', () => {
    expect(placementProblem('/srv/s01/meta', [])).toBeUndefined();
    expect(placementProblem('/etc/cyrus/meta', [])).toMatch(/under \/etc, a system directory/);
    expect(placementProblem('/usr', [])).toMatch(/under \/usr/);
    expect(placementProblem('/', [])).toMatch(/the root directory/);
    expect(placementProblem('/etc/x', ['/etc'])).toMatch(/system directory/);
  });
});

describe('a parent Cyrus could change', () => {
  it('is one it owns, one writable by everyone or by a group it is in, unless sticky', () => {
    expect(changeableBy({ uid: 0, gid: 0, mode: 0o40755 }, CYRUS)).toBeUndefined();
    expect(changeableBy({ uid: CYRUS.uid, gid: 0, mode: 0o40700 }, CYRUS)).toBe('owned by cyrus');
    expect(changeableBy({ uid: 0, gid: 0, mode: 0o40777 }, CYRUS)).toBe('writable by everyone');
    expect(changeableBy({ uid: 0, gid: 64997, mode: 0o40775 }, CYRUS)).toMatch(/writable by group 64997/);
    expect(changeableBy({ uid: 0, gid: 4, mode: 0o40775 }, CYRUS)).toBeUndefined(); // a group cyrus is not in
    expect(changeableBy({ uid: 0, gid: 0, mode: 0o41777 }, CYRUS)).toBeUndefined(); // /tmp
  });
});

describe('opening a slot root', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'roots-'));
    chmodSync(dir, 0o755);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates it and its missing parents', async () => {
    const root = await openSlotRoot(join(dir, 'srv', 's01', 'meta'), [], undefined);
    await root.close();
    expect(statSync(join(dir, 'srv', 's01', 'meta')).isDirectory()).toBe(true);
  });

  it('refuses a root that is a symlink, and one outside the disks', async () => {
    const target = mkdtempSync(join(tmpdir(), 'roots-target-'));
    try {
      symlinkSync(target, join(dir, 'meta'));
      await expect(openSlotRoot(join(dir, 'meta'), [], undefined)).rejects.toThrow(/meta is a symlink/);
      await expect(openSlotRoot(join(dir, 'x', 'meta'), ['/srv/d0'], undefined)).rejects.toBeInstanceOf(UnsafePathError);
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot)('gives the root to cyrus, and refuses one whose parent cyrus owns', async () => {
    const root = await openSlotRoot(join(dir, 'a', 'meta'), [], CYRUS);
    await root.close();
    expect(statSync(join(dir, 'a', 'meta'))).toMatchObject({ uid: CYRUS.uid, gid: CYRUS.gid });
    expect(statSync(join(dir, 'a'))).toMatchObject({ uid: 0 }); // parents stay root's
    mkdirSync(join(dir, 'b'));
    chownSync(join(dir, 'b'), CYRUS.uid, 0);
    const err = await openSlotRoot(join(dir, 'b', 'meta'), [], CYRUS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePathError);
    expect((err as Error).message).toMatch(/b, a parent of the slot directory .* is owned by cyrus/);
  });
});
