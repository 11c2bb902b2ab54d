// The files the agent writes for one slot's Cyrus: its directories, imapd.conf and cyrus.conf (owned by cyrus, the
// config readable by it only: it holds the sync password) and, with production auth, the replication user's
// password in the slot's own sasldb.
import { chown, mkdir, readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { writeFileAtomic } from '@slotctl/shared';
import { CYRUS_GROUP, CYRUS_USER } from '../cyrus/install.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { CONF_SUBDIRS, type SlotLayout } from './layout.js';
import { saslRealm, sasldbPath, type AuthConfig } from './render.js';

export type Owner = { uid: number; gid: number };

let cyrusIds: Owner | undefined;
/** cyrus:mail, the owner of everything the agent writes for Cyrus; undefined when not root (tests as a user). */
export async function cyrusOwner(): Promise<Owner | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!cyrusIds) {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const group = await readFile('/etc/group', 'utf8');
    const uid = Number(passwd.split('\n').find((l) => l.startsWith(`${CYRUS_USER}:`))?.split(':')[2]);
    const gid = Number(group.split('\n').find((l) => l.startsWith(`${CYRUS_GROUP}:`))?.split(':')[2]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('user cyrus or group mail is missing: is cyrus-imapd installed?');
    cyrusIds = { uid, gid };
  }
  return cyrusIds;
}

/** Writes `content` atomically, readable by cyrus only. */
export async function writeCyrusFile(path: string, content: string): Promise<void> {
  await writeFileAtomic(path, content, 0o640);
  const owner = await cyrusOwner();
  if (owner) await chown(path, owner.uid, owner.gid);
}

/** A slot's directories and both config files, as rendered; with sasldb auth also the replication password. */
export async function writeSlotConfig(input: { slot: string; desired: AppliedSlot; layout: SlotLayout; rendered: { imapdConf: string; cyrusConf: string }; auth: AuthConfig }): Promise<void> {
  const { desired: d, layout } = input;
  const owner = await cyrusOwner();
  // Parents must be traversable by cyrus; the slot's own directories belong to it.
  await mkdir(d.metaPath, { recursive: true, mode: 0o755 });
  await mkdir(d.dataPath, { recursive: true, mode: 0o755 });
  const dirs = [d.metaPath, d.dataPath, layout.etcDir, layout.runDir, layout.metaPartition, layout.dataPartition, layout.confDir, ...CONF_SUBDIRS.map((sub) => `${layout.confDir}/${sub}`)];
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    if (owner) await chown(dir, owner.uid, owner.gid);
  }
  // imapd.conf holds the sync password: readable by cyrus only.
  await writeCyrusFile(layout.imapdConf, input.rendered.imapdConf);
  await writeCyrusFile(layout.cyrusConf, input.rendered.cyrusConf);
  if (input.auth.mode === 'sasldb') await setSyncPassword(input.slot, layout, input.auth, owner);
}

/** Production auth: the replication user's password in the slot's own sasldb (idempotent). */
async function setSyncPassword(slot: string, layout: SlotLayout, auth: AuthConfig, owner: Owner | undefined): Promise<void> {
  const db = sasldbPath(layout.confDir);
  const result = await execa('saslpasswd2', ['-p', '-c', '-f', db, '-u', saslRealm(slot), auth.syncUser], {
    input: auth.syncPassword,
    reject: false,
    all: true,
  });
  if (result.exitCode !== 0) throw new Error(`saslpasswd2 for ${db} failed: ${result.all ?? result.exitCode}`);
  if (owner) await chown(db, owner.uid, owner.gid);
}
