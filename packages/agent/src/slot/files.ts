// The files the agent writes for one slot's Cyrus: its directories (owned by cyrus:mail), imapd.conf and cyrus.conf
// (root:mail 0640: Cyrus reads them through its group, nobody else can, and imapd.conf holds the sync password) and,
// with production auth, the replication user's password in the slot's own sasldb. The slot's directories belong to
// Cyrus, so everything below them is done through safe-fs.ts: no link Cyrus could put there is ever followed.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { execa } from 'execa';
import { fileStamp } from '@slotctl/shared/base';
import { asCyrusTool } from '../cyrus/install.js';
import { CYRUS_GROUP, CYRUS_USER } from '../cyrus/install.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { CONF_SUBDIRS, type SlotLayout } from './layout.js';
import { saslRealm, sasldbPath, type AuthConfig } from './render.js';
import { openSlotRoot, type CyrusIdentity } from './roots.js';
import { using, type Owner } from './safe-fs.js';

export type { Owner } from './safe-fs.js';

/** Mode of the rendered configs: the owner writes, group mail (Cyrus) reads, others nothing (the sync password). */
export const CONFIG_MODE = 0o640;

let cyrusIds: CyrusIdentity | undefined;
/** cyrus (with its groups) and mail, the owner of everything the agent makes for Cyrus; undefined when not root. */
export async function cyrusOwner(): Promise<CyrusIdentity | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!cyrusIds) {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const group = (await readFile('/etc/group', 'utf8')).split('\n').map((l) => l.split(':'));
    const uid = Number(passwd.split('\n').find((l) => l.startsWith(`${CYRUS_USER}:`))?.split(':')[2]);
    const gid = Number(group.find((g) => g[0] === CYRUS_GROUP)?.[2]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('user cyrus or group mail is missing: is cyrus-imapd installed?');
    const primary = Number(passwd.split('\n').find((l) => l.startsWith(`${CYRUS_USER}:`))?.split(':')[3]);
    const member = group.filter((g) => (g[3] ?? '').split(',').includes(CYRUS_USER)).map((g) => Number(g[2]));
    cyrusIds = { uid, gid, groups: [...new Set([gid, primary, ...member].filter(Number.isInteger))] };
  }
  return cyrusIds;
}

/** Who owns the rendered configs: root (the agent) and group mail; undefined when not root. */
async function configOwner(): Promise<Owner | undefined> {
  const cyrus = await cyrusOwner();
  return cyrus && { uid: process.getuid!(), gid: cyrus.gid };
}

/**
 * A slot's directories, created when missing and given to cyrus:mail; refuses (UnsafePathError) a root outside the
 * machine's disks, a parent Cyrus could change, and a link anywhere on the way. Run before every config write and
 * every start, so a directory swapped for a link while the slot was down is found before Cyrus or root uses it.
 */
export async function prepareSlotDirs(layout: SlotLayout, disks: readonly string[]): Promise<void> {
  const owner = await cyrusOwner();
  const create = { mode: 0o750, owner };
  await using(openSlotRoot(layout.metaPath, disks, owner), async (meta) => {
    for (const dir of [layout.etcDir, layout.runDir, layout.metaPartition, layout.confDir, ...CONF_SUBDIRS.map((sub) => `${layout.confDir}/${sub}`)]) {
      await using(meta.walk(relative(layout.metaPath, dir), create), async () => undefined);
    }
  });
  await using(openSlotRoot(layout.dataPath, disks, owner), (data) => using(data.walk(relative(layout.dataPath, layout.dataPartition), create), async () => undefined));
}

/** Writes one of the slot's configs (a file below its meta path) atomically, root:mail 0640, following no link. */
export async function writeCyrusFile(layout: SlotLayout, path: string, content: string): Promise<void> {
  const rel = relative(layout.metaPath, dirname(path));
  if (!rel || rel.startsWith('..')) throw new Error(`${path} is not below the slot's meta path ${layout.metaPath}`);
  const owner = await configOwner();
  // the disks were checked when the directories were prepared (every config write and every start)
  await using(openSlotRoot(layout.metaPath, [], await cyrusOwner()), (meta) => using(meta.walk(rel), (dir) => dir.writeFile(path.slice(dirname(path).length + 1), content, CONFIG_MODE, owner)));
}

/** Reads one of the slot's configs without following a link (its content may be copied into another file). */
export async function readCyrusFile(layout: SlotLayout, path: string): Promise<string> {
  const rel = relative(layout.metaPath, dirname(path));
  return using(openSlotRoot(layout.metaPath, [], await cyrusOwner()), (meta) => using(meta.walk(rel), (dir) => dir.readFile(path.slice(dirname(path).length + 1))));
}

/** A slot's directories and both config files, as rendered; with sasldb auth also the replication password. */
export async function writeSlotConfig(input: { slot: string; desired: AppliedSlot; layout: SlotLayout; rendered: { imapdConf: string; cyrusConf: string }; auth: AuthConfig; disks: readonly string[] }): Promise<void> {
  const { layout } = input;
  await prepareSlotDirs(layout, input.disks);
  await writeCyrusFile(layout, layout.imapdConf, input.rendered.imapdConf);
  await writeCyrusFile(layout, layout.cyrusConf, input.rendered.cyrusConf);
  if (input.auth.mode === 'sasldb') await setSyncPassword(input.slot, layout, input.auth);
}

/**
 * Production auth: the replication user's password in the slot's own sasldb (idempotent). saslpasswd2 runs as cyrus:
 * the database is Cyrus's, in a directory Cyrus owns, and root never opens a path there.
 */
async function setSyncPassword(slot: string, layout: SlotLayout, auth: AuthConfig): Promise<void> {
  const db = sasldbPath(layout.confDir);
  // Once per slot and password while the database stays as this process left it: a replica promoted in place writes
  // its config again, and saslpasswd2 (a process started as cyrus) was one of the steps between the promotion and
  // the bound address on a loaded host. lstat: the directory is Cyrus's, nothing there is followed.
  const wanted = createHash('sha256').update(`${saslRealm(slot)}\0${auth.syncUser}\0${auth.syncPassword}`).digest('hex');
  const seen = passwordsSet.get(db);
  if (seen && seen.wanted === wanted && seen.file === fileStamp(db, { noFollow: true })) return;
  const { file, args } = asCyrusTool('saslpasswd2', ['-p', '-c', '-f', db, '-u', saslRealm(slot), auth.syncUser]);
  // bounded like every command the agent waits on: a slot's start must not hang on it
  const result = await execa(file, args, { input: auth.syncPassword, reject: false, all: true, timeout: 30_000, killSignal: 'SIGKILL' });
  if (result.timedOut) throw new Error(`saslpasswd2 for ${db} did not finish within 30 s (killed)`);
  if (result.exitCode !== 0) throw new Error(`saslpasswd2 for ${db} failed: ${result.all ?? result.exitCode}`);
  const now = fileStamp(db, { noFollow: true });
  if (now) passwordsSet.set(db, { wanted, file: now });
  else passwordsSet.delete(db);
}

/** The sasldb files whose replication password this process set, and how each file was when it had. */
const passwordsSet = new Map<string, { wanted: string; file: string }>();

