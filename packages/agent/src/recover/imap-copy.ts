// The IMAP way of recovery (RECIPE.md): when the new master holds a mailbox under another uniqueid (e.g. a
// delivery autocreated it after the failover), `sync_client -m` changes nothing, and when the mailbox keeps changing
// under deliveries it cannot merge (IMAP_SYNC_CHANGED, see push.ts); then the old slot's messages are copied over
// IMAP: FETCH FLAGS INTERNALDATE EMAILID BODY.PEEK[] on the old slot, skip what the new master already
// has (same EMAILID: same content) or is known to have expunged, APPEND the rest with their flags (minus \Recent) and date. Content, EMAILID,
// flags and date stay; UIDs and modseqs do not. Running it twice copies nothing. The old slot serves IMAP for this
// from a temporary cyrmaster on its slot IP only (no LMTP, no sync service, no sync log): nothing can reach it but us.
import { join } from 'node:path';
import { execa } from 'execa';
import { ImapFlow } from 'imapflow';
import type { Logger } from '@slotctl/shared';
import { asCyrus, cyrusBinary } from '../cyrus/install.js';
import { internalName } from '../cyrus/mailboxes.js';
import { imapGreets, pidAlive, readPidFile, signalGroup } from '../slot/process.js';
import { readCyrusFile, writeCyrusFile } from '../slot/files.js';
import type { SlotLayout } from '../slot/layout.js';
import type { AuthConfig } from '../slot/render.js';
import type { VipDriver } from '../vip/driver.js';

/** `user.bob^smith.Projects` → owner `bob.smith`, folder `Projects` (INBOX for the user's own mailbox). */
export function ownerAndFolder(internal: string): { owner: string; folder: string } {
  const parts = internal.split('.');
  if (parts[0] !== 'user' || !parts[1]) throw new Error(`${internal} is not a user's mailbox`);
  const unescape = (s: string) => s.replaceAll('^', '.');
  return { owner: unescape(parts[1]), folder: parts.length === 2 ? 'INBOX' : parts.slice(2).map(unescape).join('/') };
}

/** LOGOUT, but never waiting more than 2 s for it (a hung goodbye must not hang a recovery): then the socket closes. */
async function leave(c: ImapFlow): Promise<void> {
  await Promise.race([c.logout().catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  c.close();
}

function client(host: string, port: number, auth: AuthConfig, authzid?: string): ImapFlow {
  return new ImapFlow({ host, port, secure: false, doSTARTTLS: false, logger: false, disableAutoIdle: true, auth: { user: auth.syncUser, pass: auth.syncPassword, ...(authzid ? { authzid } : {}) } } as never);
}

export interface TemporaryImap {
  stop: () => Promise<void>;
}

/**
 * The slot's imapd.conf for its temporary IMAP, with `delete_mode: immediate`. A mailbox deleted here after its copy
 * was verified must be gone, not kept under DELETED: a delayed delete keeps its uniqueid, and once this slot is the
 * new master's replica, the master's sync renames a mailbox of the same uniqueid back into place (IMAP_MAILBOX_MOVED),
 * finds other messages at the UIDs both used (SYNCERROR: guid mismatch) and copies the replica's back into the master,
 * where the IMAP copy had already put them: every message of the mailbox twice (CI beside two busy loops, ci-146).
 */
export function temporaryImapdConf(own: string): string {
  return [...own.trimEnd().split('\n').filter((l) => !/^\s*delete_mode\s*:/.test(l)), 'delete_mode: immediate', ''].join('\n');
}

/** Starts the returning slot's cyrmaster with IMAP on its slot IP only; resolves when it greets. */
export async function startTemporaryImap(layout: SlotLayout, slotIp: string, imapPort: number, vip: VipDriver, log: Logger): Promise<TemporaryImap> {
  const conf = join(layout.etcDir, 'cyrus-recover.conf');
  const imapdConf = join(layout.etcDir, 'imapd-recover-imap.conf');
  const pidFile = join(layout.runDir, 'recover.pid');
  // read without following a link: what it holds is copied into a file Cyrus reads
  await writeCyrusFile(layout, imapdConf, temporaryImapdConf(await readCyrusFile(layout, layout.imapdConf)));
  const text = ['# Written by slot-agent for a recovery: IMAP on the slot IP only, deletes immediate', 'START {', `  recover cmd="ctl_cyrusdb -C ${imapdConf} -r"`, '}', 'SERVICES {', `  imap cmd="imapd -C ${imapdConf}" listen="${slotIp}:${imapPort}" prefork=0`, '}', ''].join('\n');
  await writeCyrusFile(layout, conf, text);
  await vip.bind(slotIp);
  const { file, args } = asCyrus(cyrusBinary('master'), ['-C', imapdConf, '-M', conf, '-p', pidFile, '-D']);
  const child = execa(file, args, { detached: true, stdio: 'ignore', cleanup: false, reject: false });
  const pid = child.pid!;
  const deadline = performance.now() + 15_000;
  while (!(await imapGreets(slotIp, imapPort, 500))) {
    if (performance.now() > deadline || !pidAlive(pid)) {
      signalGroup(pid, 'SIGKILL');
      throw new Error(`the returning slot's temporary IMAP on ${slotIp}:${imapPort} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log.info({ pid, ip: slotIp }, 'temporary IMAP of the returning slot started (no LMTP, no sync)');
  return {
    stop: async () => {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 50));
      signalGroup(pid, 'SIGKILL');
      const left = await readPidFile(pidFile);
      if (left && left !== pid && pidAlive(left)) signalGroup(left, 'SIGKILL');
      log.info({ pid }, 'temporary IMAP of the returning slot stopped');
    },
  };
}

export interface CopyInput {
  mailbox: string;
  source: { host: string; port: number };
  target: { host: string; port: number };
  auth: AuthConfig;
  /** GUIDs of messages the target held and expunged: not brought back (its user deleted them after the failover). */
  expungedThere?: readonly string[];
}

/** Cyrus's EMAILID of a message: "M" and the first 24 hex digits of its GUID (measured on Cyrus 3.6). */
export const emailIdOf = (guid: string) => `M${guid.slice(0, 24)}`;

/**
 * Copies what the target lacks (by EMAILID) and never expunged; returns how many were copied, how many it already
 * had, and how many it had expunged.
 */
export async function copyMissing(input: CopyInput): Promise<{ copied: number; present: number; expunged: number }> {
  const { owner, folder } = ownerAndFolder(input.mailbox);
  const src = client(input.source.host, input.source.port, input.auth, owner);
  const dst = client(input.target.host, input.target.port, input.auth, owner);
  await src.connect();
  await dst.connect();
  try {
    const have = new Set<string>();
    // gone from the new master (deleted there after the failover): made again, to hold what only the old slot has
    const box = await dst.mailboxOpen(folder).catch(async (err: unknown) => {
      if ((err as { responseStatus?: string }).responseStatus !== 'NO') throw err;
      await dst.mailboxCreate(folder);
      return dst.mailboxOpen(folder);
    });
    if (box.exists > 0) for await (const m of dst.fetch('1:*', { emailId: true })) if (m.emailId) have.add(m.emailId);
    await src.mailboxOpen(folder, { readOnly: true });
    const gone = new Set((input.expungedThere ?? []).map(emailIdOf));
    let copied = 0;
    let present = 0;
    let expunged = 0;
    for await (const m of src.fetch('1:*', { emailId: true, flags: true, internalDate: true, source: true })) {
      if (m.emailId && have.has(m.emailId)) {
        present++;
        continue;
      }
      if (m.emailId && gone.has(m.emailId)) {
        expunged++;
        continue;
      }
      const flags = [...(m.flags ?? [])].filter((f) => f !== '\\Recent');
      await dst.append(folder, m.source!, flags, m.internalDate);
      copied++;
    }
    return { copied, present, expunged };
  } finally {
    await leave(src);
    await leave(dst);
  }
}

/** The inverse of ownerAndFolder: `bob.smith`, `Projects/2026` → `user.bob^smith.Projects.2026`. */
export function mailboxOf(owner: string, folder: string): string {
  return internalName(folder.toUpperCase() === 'INBOX' ? `user/${owner}` : `user/${owner}/${folder}`);
}

/** Every mailbox `owner` has on the (temporary) old slot, as internal names (LIST as the owner). */
export async function listOwnerMailboxes(source: { host: string; port: number }, auth: AuthConfig, owner: string): Promise<string[]> {
  const c = client(source.host, source.port, auth, owner);
  await c.connect();
  try {
    return (await c.list()).filter((f) => !f.flags.has('\\NonExistent') && !f.flags.has('\\Noselect')).map((f) => mailboxOf(owner, f.path));
  } finally {
    await leave(c);
  }
}

/** What an IMAP server said, not just imapflow's "Command failed". */
export function imapError(err: unknown): string {
  const e = err as Error & { responseText?: string; responseStatus?: string };
  return e.responseText ? `${e.responseStatus ?? 'NO'} ${e.responseText}` : e.message;
}

/** imapflow has no ACL verbs; its command queue takes any command (SETACL, RFC 4314). */
type RawImap = { exec(command: string, attributes: { type: string; value: string }[]): Promise<unknown> };

/**
 * Deletes a mailbox on the (temporary) old slot as admin, for good (its temporary imapd.conf). Cyrus lets
 * nobody delete a mailbox without the x right on it, admins included: the admin first grants itself all rights
 * (it may: admins hold the a right everywhere). Tried three times half a second apart.
 */
export async function deleteOnOldSlot(mailbox: string, source: { host: string; port: number }, auth: AuthConfig, gone: () => Promise<boolean>): Promise<void> {
  const name = mailbox.split('.').map((p) => p.replaceAll('^', '.')).join('/');
  for (let attempt = 1; ; attempt++) {
    const admin = client(source.host, source.port, auth);
    try {
      await admin.connect();
      await (admin as unknown as RawImap).exec('SETACL', [
        { type: 'STRING', value: name },
        { type: 'STRING', value: auth.syncUser },
        { type: 'ATOM', value: 'lrswipkxtecda' },
      ]);
      // Measured: deleting a user's INBOX renamed it under DELETED at once, and then the answer never came (Cyrus 3.6
      // went on to its calendar-alarm database). The rename is what counts: after 10 s, look instead of waiting.
      const answered = await Promise.race([admin.mailboxDelete(name).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 10_000))]);
      if (answered || (await gone())) return;
      throw new Error(`no answer to DELETE ${name} within 10 s, and it still exists`);
    } catch (err) {
      // gone already: a folder of a user whose INBOX was deleted before it (deleting an INBOX deletes the whole user)
      if (await gone().catch(() => false)) return;
      if (attempt >= 3) throw new Error(`deleting ${name} on the returning slot failed: ${imapError(err)}`);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await leave(admin);
    }
  }
}
