import { chmodSync, chownSync, lchownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { accessProblem, bitsFor, modeString, type CyrusUser } from './access.js';

const isRoot = process.getuid?.() === 0;
const me = process.getuid?.() ?? 0;
/** A stand-in for cyrus: a uid and groups nobody else has, so only "others" bits (or those given to them) apply. */
const CYRUS: CyrusUser = {
  uid: 64999,
  gid: 64998,
  groups: [64998, 64997],
  label: 'the cyrus user',
  userName: (uid) => (uid === 0 ? 'root' : uid === 64999 ? 'cyrus' : String(uid)),
  groupName: (gid) => (gid === 0 ? 'root' : gid === 64998 ? 'mail' : String(gid)),
};

describe('permission arithmetic', () => {
  it('takes the owner bits, else the group bits (primary or supplementary group), else the others bits', () => {
    expect(bitsFor({ uid: 64999, gid: 0, mode: 0o40701 }, CYRUS)).toBe(7);
    expect(bitsFor({ uid: 0, gid: 64997, mode: 0o40750 }, CYRUS)).toBe(5);
    expect(bitsFor({ uid: 0, gid: 64998, mode: 0o40710 }, CYRUS)).toBe(1);
    expect(bitsFor({ uid: 0, gid: 0, mode: 0o40751 }, CYRUS)).toBe(1);
    // the owner's bits apply even when the group's would allow more (as the kernel does)
    expect(bitsFor({ uid: 64999, gid: 64998, mode: 0o40070 }, CYRUS)).toBe(0);
  });

  it('prints modes as ls does', () => {
    expect(modeString(0o40700)).toBe('drwx------');
    expect(modeString(0o100640)).toBe('-rw-r-----');
    expect(modeString(0o41777)).toBe('drwxrwxrwt');
    expect(modeString(0o42750)).toBe('drwxr-s---');
    expect(modeString(0o120777)).toBe('lrwxrwxrwx');
  });
});

describe.runIf(isRoot)('walking from / to a slot path', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'slotctl-access-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'srv', 'x', 's1', 'spool'), { recursive: true, mode: 0o755 });
    chownSync(join(dir, 'srv', 'x', 's1'), CYRUS.uid, CYRUS.gid);
    chownSync(join(dir, 'srv', 'x', 's1', 'spool'), CYRUS.uid, CYRUS.gid);
    writeFileSync(join(dir, 'srv', 'x', 's1', 'imapd.conf'), 'x: y\n', { mode: 0o640 });
    chownSync(join(dir, 'srv', 'x', 's1', 'imapd.conf'), 0, CYRUS.gid);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const spool = () => join(dir, 'srv', 'x', 's1', 'spool');
  const conf = () => join(dir, 'srv', 'x', 's1', 'imapd.conf');

  it('passes when every directory on the way may be traversed and the target read or written', async () => {
    expect(await accessProblem(spool(), 'write', CYRUS)).toBeUndefined();
    expect(await accessProblem(conf(), 'read', CYRUS)).toBeUndefined();
  });

  it('names the directory Cyrus cannot traverse, its mode and owner, and the fix', async () => {
    const x = join(dir, 'srv', 'x');
    chmodSync(x, 0o700);
    expect(await accessProblem(spool(), 'write', CYRUS)).toBe(`the cyrus user (uid 64999) cannot traverse ${x} (drwx------ root:root): chmod o+x ${x}, or give it to group mail`);
    expect(await accessProblem(conf(), 'read', CYRUS)).toBe(`the cyrus user (uid 64999) cannot traverse ${x} (drwx------ root:root): chmod o+x ${x}, or give it to group mail`);
    // through one of its groups, g+x is the fix
    chownSync(x, 0, 64997);
    chmodSync(x, 0o740);
    expect(await accessProblem(spool(), 'write', CYRUS)).toBe(`the cyrus user (uid 64999) cannot traverse ${x} (drwxr----- root:64997): chmod g+x ${x}`);
    chmodSync(x, 0o710);
    expect(await accessProblem(spool(), 'write', CYRUS)).toBeUndefined();
  });

  it('names a config Cyrus cannot read and a partition it cannot write', async () => {
    chownSync(conf(), 0, 0);
    expect(await accessProblem(conf(), 'read', CYRUS)).toBe(`the cyrus user (uid 64999) cannot read ${conf()} (-rw-r----- root:root): chmod o+r ${conf()}, or give it to group mail`);
    chownSync(spool(), 0, 0);
    expect(await accessProblem(spool(), 'write', CYRUS)).toMatch(new RegExp(`^the cyrus user \\(uid 64999\\) cannot write to ${spool()} \\(drwxr-xr-x root:root\\): chown 64999:64998 ${spool()}`));
    expect(await accessProblem(join(dir, 'nothing', 'here'), 'write', CYRUS)).toBe(`${join(dir, 'nothing')} does not exist`);
  });

  it("follows root's symlinks (checking where they lead), never another user's", async () => {
    const link = join(dir, 'link');
    symlinkSync(join(dir, 'srv'), link);
    expect(await accessProblem(join(link, 'x', 's1', 'spool'), 'write', CYRUS)).toBeUndefined();
    chmodSync(join(dir, 'srv'), 0o700);
    expect(await accessProblem(join(link, 'x', 's1', 'spool'), 'write', CYRUS)).toMatch(new RegExp(`^the cyrus user \\(uid 64999\\) cannot traverse ${join(dir, 'srv')} \\(drwx------`));
    chmodSync(join(dir, 'srv'), 0o755);
    const relative = join(dir, 'rel');
    symlinkSync('srv/x', relative);
    expect(await accessProblem(join(relative, 's1', 'spool'), 'write', CYRUS)).toBeUndefined();
    lchownSync(link, 64996, 64996);
    expect(me).toBe(0);
    expect(await accessProblem(join(link, 'x', 's1', 'spool'), 'write', CYRUS)).toBe(`${link} is a symlink owned by 64996 (uid 64996), not followed: point the slot at the real path`);
  });
});
