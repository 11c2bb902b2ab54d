// What a slot's own tree takes (the room checks of replica moves read it): bytes and inodes, links counted once,
// symlinks not followed (a link a less trusted user placed must not make the agent, as root, walk elsewhere).
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { treeUsage } from './space.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('a slot tree\'s usage', () => {
  it('counts files and directories, message bytes apart, a hard-linked file once, and never follows a symlink', async () => {
    const root = mkdtempSync(join(tmpdir(), 'tree-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'elsewhere-'));
    dirs.push(root, elsewhere);
    mkdirSync(join(root, 'user', 'ann'), { recursive: true });
    writeFileSync(join(root, 'user', 'ann', '1.'), 'x'.repeat(1000));
    writeFileSync(join(root, 'user', 'ann', 'cyrus.index'), 'y'.repeat(300));
    mkdirSync(join(root, 'user', 'ben'));
    // the single-instance store: one message linked into a second mailbox
    linkSync(join(root, 'user', 'ann', '1.'), join(root, 'user', 'ben', '1.'));
    writeFileSync(join(elsewhere, 'big'), 'z'.repeat(50_000));
    symlinkSync(elsewhere, join(root, 'user', 'link'));
    // inodes: user, ann, 1., cyrus.index, ben, link (the linked 1. once)
    await expect(treeUsage(root)).resolves.toEqual({ bytes: 1300, inodes: 6, messageBytes: 1000 });
  });

  it('is nothing for a directory that is not there', async () => {
    expect(await treeUsage('/nonexistent/slot/data')).toEqual({ bytes: 0, inodes: 0, messageBytes: 0 });
  });
});
