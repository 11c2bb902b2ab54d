import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafePathError } from '@slotctl/shared';
import { CONFIG_MODE, cyrusOwner, prepareSlotDirs, writeCyrusFile, writeSlotConfig } from './files.js';
import { slotLayout, type SlotLayout } from './layout.js';
import { sasldbPath } from './render.js';
import type { AppliedSlot } from '../state/apply-plan.js';

const isRoot = process.getuid?.() === 0;
let dir: string;
let layout: SlotLayout;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'slot-files-'));
  chmodSync(dir, 0o755);
  layout = slotLayout(join(dir, 'srv', 's01', 'data'), join(dir, 'srv', 's01', 'meta'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("a slot's files", () => {
  it('writes a config 0640: the owner writes, group mail (Cyrus) reads, others nothing', async () => {
    await prepareSlotDirs(layout, []);
    await writeCyrusFile(layout, layout.imapdConf, 'sync_password: s3cret\n');
    const s = statSync(layout.imapdConf);
    expect(s.mode & 0o777).toBe(CONFIG_MODE);
    expect(CONFIG_MODE & 0o007).toBe(0);
    expect(readFileSync(layout.imapdConf, 'utf8')).toBe('sync_password: s3cret\n');
    if (isRoot) expect(s).toMatchObject({ uid: 0, gid: (await cyrusOwner())!.gid });
  });

  it('refuses a path that is not below the meta path', async () => {
    await expect(writeCyrusFile(layout, join(dir, 'elsewhere.conf'), 'x')).rejects.toThrow(/not below the slot's meta path/);
  });

  it('refuses slot paths outside the declared disks', async () => {
    await expect(prepareSlotDirs(layout, [join(dir, 'disk0')])).rejects.toThrow(/not under any disk declared/);
    await prepareSlotDirs(layout, [join(dir, 'srv')]);
  });

  it.runIf(isRoot)('gives the directories to cyrus:mail, and never chowns what a link in META/run points to', async () => {
    const cyrus = (await cyrusOwner())!;
    await prepareSlotDirs(layout, []);
    for (const d of [layout.metaPath, layout.runDir, layout.syncDir, layout.dataPartition]) expect(statSync(d)).toMatchObject({ uid: cyrus.uid, gid: cyrus.gid });
    const target = mkdtempSync(join(tmpdir(), 'slot-files-target-'));
    try {
      writeFileSync(join(target, 'file'), 'root only\n', { mode: 0o600 });
      rmSync(layout.runDir, { recursive: true });
      symlinkSync(target, layout.runDir);
      const err = await prepareSlotDirs(layout, []).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as Error).message).toContain(`${layout.runDir} is a symlink`);
      expect(statSync(target)).toMatchObject({ uid: 0, gid: 0 });
      expect(statSync(target).mode & 0o7777).toBe(0o700);
      expect(statSync(join(target, 'file'))).toMatchObject({ uid: 0, gid: 0 });
      expect(statSync(join(target, 'file')).mode & 0o7777).toBe(0o600);
      // a config written through a META/etc that is a link: refused as well
      rmSync(layout.etcDir, { recursive: true });
      mkdirSync(join(target, 'etc'));
      symlinkSync(join(target, 'etc'), layout.etcDir);
      await expect(writeCyrusFile(layout, layout.imapdConf, 'x')).rejects.toThrow(/etc is a symlink/);
      expect(() => statSync(join(target, 'etc', 'imapd.conf'))).toThrow();
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });

  it.runIf(isRoot)('sets the replication password in the sasldb once, again when the password or the file changed', async () => {
    const desired: AppliedSlot = { store: 's01', role: 'REPLICA', epoch: 1, slotIp: '127.0.21.1', serviceIp: '127.0.20.1', peerSlot: 's01-m2', peerIp: '127.0.22.1', dataPath: layout.dataPath, metaPath: layout.metaPath };
    const write = (password: string) => writeSlotConfig({ slot: 's01-m1', desired, layout, rendered: { imapdConf: 'x\n', cyrusConf: 'y\n' }, auth: { mode: 'sasldb', syncUser: 'repl', syncPassword: password }, disks: [] });
    const db = sasldbPath(layout.confDir);
    const changed = () => statSync(db, { bigint: true }).ctimeNs;
    await write('one');
    const first = changed();
    await new Promise((r) => setTimeout(r, 20));
    await write('one'); // a promotion in place writes the config again: no saslpasswd2
    expect(changed()).toBe(first);
    await write('two');
    const second = changed();
    expect(second).not.toBe(first);
    rmSync(db);
    await write('two'); // the file gone: set again
    expect(changed()).not.toBe(second);
  });
});
