// A returning old master gives back what its replica never received: each mailbox its quarantined sync logs name is
// pushed to the new master with `sync_client -m` (creates a missing mailbox, merges an existing one: union of
// messages, the new master's expunges and flags kept, clashing UIDs renumbered — it never deletes there), then every
// message GUID the old slot holds in that mailbox is looked for on the new master. Measured in RECIPE.md: `-u`,
// `-r -f`, `-A`, `-O` from the returning slot changed the new master (a subscription removed, a user sync) — never used.
import { join } from 'node:path';
import { execa } from 'execa';
import type { Logger, MailboxRecovery, RecoverReport } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from '../cyrus/install.js';
import { externalName, isDelayedDeleted, isPlausibleMailbox, mailboxGuids, type MailboxGuidList } from '../cyrus/mailboxes.js';
import { readCyrusFile, writeCyrusFile } from '../slot/files.js';
import { renderRecoverConfig, type AuthConfig, type Ports } from '../slot/render.js';
import type { SlotLayout } from '../slot/layout.js';
import type { VipDriver } from '../vip/driver.js';
import { copyMissing, deleteOnOldSlot, imapError, listOwnerMailboxes, ownerAndFolder, startTemporaryImap } from './imap-copy.js';

export interface PushInput {
  op: string;
  layout: SlotLayout;
  /** The returning slot's own IP (its temporary IMAP for the clash fallback listens there). */
  slotIp: string;
  vip: VipDriver;
  targetIp: string;
  mailboxes: readonly string[];
  ports: Ports;
  auth: AuthConfig;
  /** The new master's GUIDs of these mailboxes (its agent answers over Peer.MailboxGuids). */
  targetGuids: (names: string[]) => Promise<MailboxGuidList[]>;
  /** After clashing mailboxes were deleted here: the new master logs a user sync of their owners (Peer.SyncUsers). */
  targetUserSync: (users: string[]) => Promise<void>;
  log: Logger;
}

/** A tool's last `n` lines of output, on one line. */
const lastLines = (all: string | undefined, n: number) => (all ?? '').trim().split('\n').slice(-n).join(' | ');

/**
 * What the new master's users removed there after the failover of a mailbox this slot holds under `uniqueid`: the
 * messages it holds expunged, and those of its delayed-deleted copies under that very uniqueid — the mailbox the new
 * master took over at the failover, deleted there since by its user (the copy keeps the uniqueid: measured, 3.6). A
 * copy under another uniqueid is another mailbox of the same name (one made after the failover, or one the old slot
 * never replicated), whose delete says nothing of this one's messages.
 */
export function removedThere(uniqueid: string, there: Pick<MailboxGuidList, 'expungedGuids' | 'deleted'> | undefined): Set<string> {
  return new Set([...(there?.expungedGuids ?? []), ...copiesOf(uniqueid, there).flatMap((d) => d.guids)]);
}

/** The new master's delayed-deleted copies of the mailbox this slot holds under `uniqueid` (none when it is unknown). */
const copiesOf = (uniqueid: string, there: Pick<MailboxGuidList, 'deleted'> | undefined) => (uniqueid ? (there?.deleted ?? []).filter((d) => d.uniqueid === uniqueid) : []);

/**
 * Of `names` (mailboxes of this slot), those holding messages the new master neither holds live nor removed after
 * the failover, each with how many: what would be lost if they were deleted here.
 */
async function messagesNotOnTarget(imapdConf: string, names: readonly string[], input: Pick<PushInput, 'targetGuids'>): Promise<string[]> {
  const absent = await absentOnTarget((await mailboxGuids(imapdConf, names)).filter((m) => m.exists && m.guids.length), input);
  return [...absent].flatMap(([name, { guids, removed }]) => {
    const lost = guids.filter((g) => !removed.has(g)).length;
    return lost ? [`${name}: ${lost} message(s) not on the new master`] : [];
  });
}

/** Per mailbox of the old slot (`local`): its GUIDs the new master does not hold live, and what its users removed there (removedThere). */
async function absentOnTarget(local: readonly { name: string; uniqueid: string; guids: string[] }[], input: Pick<PushInput, 'targetGuids'>): Promise<Map<string, { guids: string[]; removed: Set<string> }>> {
  if (!local.length) return new Map();
  const remote = new Map((await input.targetGuids(local.map((m) => m.name))).map((r) => [r.name, r]));
  return new Map(local.map((m) => {
    const there = remote.get(m.name);
    const live = new Set(there?.guids ?? []);
    return [m.name, { guids: m.guids.filter((g) => !live.has(g)), removed: removedThere(m.uniqueid, there) }];
  }));
}

/**
 * A mailbox the new master took over at the failover and its user deleted there since: none live under the name
 * there, a delayed-deleted copy under this slot's uniqueid. What its user saw there is not given back (the soak, seed
 * 12914: `machine recover` made a folder deleted after the failover again, with the messages its user had deleted
 * in it). Only messages the new master never had — changed here just before the failover — are, in the folder made
 * again over IMAP (sync_client -m cannot make a name its tombstone holds). Undefined: not such a mailbox.
 */
export function deletedSinceFailover(m: Pick<MailboxGuidList, 'name' | 'uniqueid' | 'guids'>, there: Pick<MailboxGuidList, 'exists' | 'expungedGuids' | 'deleted'> | undefined): Required<MailboxRecovery> | undefined {
  const copies = copiesOf(m.uniqueid, there).map((d) => d.name);
  if (!there || there.exists || !copies.length) return undefined;
  const removed = removedThere(m.uniqueid, there);
  const unseen = m.guids.filter((g) => !removed.has(g)).length;
  const base = { name: m.name, messages: m.guids.length, missing: 0 };
  return unseen === 0
    ? { ...base, result: 'nothing', detail: `deleted on the new master after the failover (${copies.join(', ')}), with the ${m.guids.length} message(s) it has here: not made again` }
    : { ...base, result: 'clash', detail: `deleted on the new master after the failover (${copies.join(', ')}); made again for ${unseen} message(s) the new master never had` };
}

/** How many times a mailbox's `sync_client -m` into an existing mailbox is tried before the IMAP way is taken. */
const PUSH_ATTEMPTS = 3;

/**
 * A failpoint for tests: mailboxes (internal names, comma-separated) whose merge is taken as failed without running
 * sync_client, so that the IMAP way for a mailbox both sides hold under one uniqueid is exercised on demand (under
 * load it is taken only when deliveries win the race). Never set in production.
 */
export const UNMERGEABLE_FAILPOINT = 'SLOTCTL_TEST_UNMERGEABLE';
const forcedUnmergeable = () => new Set((process.env[UNMERGEABLE_FAILPOINT] ?? '').split(',').map((n) => n.trim()).filter(Boolean));

export async function pushMailboxes(input: PushInput): Promise<RecoverReport> {
  const { layout, log } = input;
  const recoverConf = join(layout.etcDir, 'imapd-recover.conf');
  // read without following a link: what it holds is copied into a file Cyrus reads
  const own = await readCyrusFile(layout, layout.imapdConf);
  await writeCyrusFile(layout, recoverConf, renderRecoverConfig(own, input.targetIp, input.ports, input.auth));

  const named = [...new Set(input.mailboxes)].filter(isPlausibleMailbox).sort();
  const results: Required<MailboxRecovery>[] = [];
  // a folder deleted on the old slot before the failover: its sync log names it under DELETED, where sync_client -m
  // cannot push it (seen in the soak, seed 3274726004: it exits 1, "bailing out", and the record stayed open for
  // ever). What its user deleted is nothing to give back; its files stay on the old slot until cleanup.
  for (const name of named.filter(isDelayedDeleted)) {
    results.push({ name, result: 'nothing', detail: 'deleted on the old slot (delayed delete keeps its files there): nothing to give back', messages: 0, missing: 0 });
  }
  const names = named.filter((n) => !isDelayedDeleted(n));
  const local = await mailboxGuids(layout.imapdConf, names);
  // the new master's view first: a mailbox it holds under another uniqueid cannot be merged by sync_client -m
  // (measured: it exits 1 and changes nothing); those go the IMAP way
  const before = new Map((await input.targetGuids(local.filter((m) => m.exists).map((m) => m.name))).map((r) => [r.name, r]));
  const unmergeable = forcedUnmergeable();
  for (const m of local) {
    if (!m.exists) {
      results.push({ name: m.name, result: 'nothing', detail: 'not on the old slot (deleted or never created there)', messages: 0, missing: 0 });
      continue;
    }
    const there = before.get(m.name);
    const gone = deletedSinceFailover(m, there);
    if (gone) {
      results.push(gone);
      continue;
    }
    if (there?.exists && there.uniqueid !== m.uniqueid) {
      results.push({ name: m.name, result: 'clash', detail: `uniqueid ${m.uniqueid} here, ${there.uniqueid} on the new master`, messages: m.guids.length, missing: 0 });
      continue;
    }
    if (there?.exists && unmergeable.has(m.name)) {
      log.warn({ mailbox: m.name, failpoint: UNMERGEABLE_FAILPOINT }, 'failpoint: merge taken as failed; copying over IMAP');
      results.push({ name: m.name, result: 'clash', detail: `not merged (failpoint ${UNMERGEABLE_FAILPOINT})`, messages: m.guids.length, missing: 0 });
      continue;
    }
    const { file, args } = asCyrusTool(cyrusBinary('sync_client'), ['-C', recoverConf, '-S', input.targetIp, '-o', '-v', '-l', '-m', externalName(m.name)]);
    // Recovery runs while mail keeps arriving at the new master: a push into a mailbox receiving deliveries at the
    // same moment bails out (exit 1, "Error from sync_do_mailboxes(): bailing out!"). sync_client sends the state it
    // read at its GET MAILBOXES with its APPLY; a delivery in between makes the server answer IMAP_SYNC_CHANGED, which
    // sync_client never retries (Cyrus sync_support.c), and under load the GET-to-APPLY window grew to ~10 s, so every
    // try lost the race (CI beside two busy loops: 5 tries of two mailboxes failed). A few tries, then the IMAP way.
    let run = await execa(file, args, { reject: false, timeout: 300_000, all: true });
    for (let attempt = 2; run.exitCode !== 0 && there?.exists && attempt <= PUSH_ATTEMPTS; attempt++) {
      log.warn({ mailbox: m.name, attempt, exitCode: run.exitCode, output: lastLines(run.all, 6) }, 'sync_client -m failed to merge into the new master; trying again');
      await new Promise((r) => setTimeout(r, 250 * attempt));
      run = await execa(file, args, { reject: false, timeout: 300_000, all: true });
    }
    const output = lastLines(run.all, 3);
    if (run.exitCode !== 0 && !there?.exists) {
      // the new master deleted it after the failover: the name is a tombstone there under another uniqueid, which
      // sync_client -m cannot merge into (measured in the soak, seed 3274726004: exit 1, "bailing out", every
      // retry). The IMAP way makes the folder again and copies what the old slot had: mail is not dropped unseen.
      results.push({ name: m.name, result: 'clash', detail: `gone from the new master (deleted there after the failover); sync_client -m: ${output}`, messages: m.guids.length, missing: 0 });
      continue;
    }
    if (run.exitCode !== 0) {
      // not merged (a mailbox that kept changing under deliveries): the IMAP way copies what the new master lacks
      // and did not expunge after the failover, and the copy is verified
      results.push({ name: m.name, result: 'clash', detail: `not merged by sync_client -m after ${PUSH_ATTEMPTS} tries (${output})`, messages: m.guids.length, missing: 0 });
      log.warn({ mailbox: m.name, output }, 'sync_client -m could not merge into the new master: copying what it lacks over IMAP');
      continue;
    }
    results.push(
      run.exitCode === 0
        ? { name: m.name, result: 'pushed', detail: '', messages: m.guids.length, missing: 0 }
        : { name: m.name, result: 'failed', detail: `sync_client exit ${run.exitCode ?? run.signal}: ${output}`, messages: m.guids.length, missing: 0 },
    );
    log.info({ mailbox: m.name, result: results.at(-1)!.result, ms: run.durationMs }, 'mailbox pushed to the new master');
  }
  const clashes = results.filter((r) => r.result === 'clash');
  let error = '';
  /** Owners the new master logs a user-level sync of, once, at the end (Peer.SyncUsers): this slot gets their whole state. */
  const resync = new Set<string>();
  const imap = clashes.length ? await startTemporaryImap(layout, input.slotIp, input.ports.imap, input.vip, log) : undefined;
  try {
    const source = { host: input.slotIp, port: input.ports.imap };
    for (const r of clashes) {
      try {
        const removed = removedThere(local.find((m) => m.name === r.name)?.uniqueid ?? '', before.get(r.name));
        const { copied, present, expunged } = await copyMissing({ mailbox: r.name, source, target: { host: input.targetIp, port: input.ports.imap }, auth: input.auth, expungedThere: [...removed] });
        r.result = 'copied';
        r.detail = `${r.detail}: ${copied} message(s) copied over IMAP, ${present} already there${expunged ? `, ${expunged} expunged or deleted there after the failover left out` : ''}`;
      } catch (err) {
        r.result = 'failed';
        r.detail = `uniqueid clash, and the IMAP copy failed: ${imapError(err)}`;
      }
      log.info({ mailbox: r.name, result: r.result, detail: r.detail }, 'clashing mailbox copied over IMAP');
    }
    error = await verify(results, local, input);
    // a clashing mailbox left on the returning slot would make the new master's rolling sync loop for ever once
    // this slot is its replica, and one of the new master's uniqueid would be merged back into it (every message
    // twice): delete it here for good (imap-copy.ts temporaryImapdConf) once every message is verified there
    const verifiedClashes = results.filter((r) => r.result === 'copied' && r.missing === 0);
    if (!error && imap && verifiedClashes.length) {
      for (const r of verifiedClashes) {
        const { owner, folder } = ownerAndFolder(r.name);
        // Deleting a user's INBOX deletes the whole user here, folders never named in the sync logs included: only
        // once every message of every one of them is on the new master (else the record stays open, nothing lost).
        if (folder === 'INBOX') {
          const unverified = await messagesNotOnTarget(layout.imapdConf, await listOwnerMailboxes(source, input.auth, owner), input);
          if (unverified.length) {
            r.result = 'failed';
            r.detail = `${r.detail}; not deleted on the returning slot, which would delete all of ${owner} there: ${unverified.join('; ')}`;
            error ||= `${r.name}: ${r.detail}`;
            continue;
          }
        }
        await deleteOnOldSlot(r.name, source, input.auth, async () => !(await mailboxGuids(layout.imapdConf, [r.name]))[0]!.exists);
        resync.add(owner);
      }
    }
  } catch (err) {
    error ||= imapError(err);
  } finally {
    await imap?.stop();
  }
  // A mailbox deleted here before the failover and not replicated is still on the new master (recovery never deletes
  // there): this slot, its replica from now on, would lack it for good — the new master's rolling sync sends only
  // what changes. Its owners are resynchronised too (the soak, seed 12914: a folder deleted 0.7 s before a crash, on
  // the master only after the recovery).
  for (const r of results) {
    const owner = r.result === 'nothing' ? ownerOf(r.name) : undefined;
    if (owner) resync.add(owner);
  }
  if (!error && resync.size) {
    const users = [...resync];
    try {
      await input.targetUserSync(users);
      log.info({ users }, 'their owners resynchronised from the new master (mailboxes deleted here, or clashing ones copied)');
    } catch (err) {
      error = `could not ask the new master to resynchronise ${users.join(', ')}: ${(err as Error).message}`;
    }
  }
  return { op: input.op, done: true, mailboxes: results, error };
}

/** The user owning an internal mailbox name, a delayed-deleted one too (DELETED.user.bob.Work.5F3A…); undefined: not a user's. */
export function ownerOf(name: string): string | undefined {
  try {
    return ownerAndFolder(isDelayedDeleted(name) ? name.slice('DELETED.'.length) : name).owner;
  } catch {
    return undefined;
  }
}

/**
 * Every message of the old slot, by GUID, on the new master. After a `-m` push (exit 0: Cyrus's own sync reconciled
 * the mailbox) a message absent there can only be one the new master expunged after the failover — the sync keeps
 * the newer expunge — so it is reported, not counted missing. After an IMAP copy nothing may be absent that the new
 master never held.
 */
async function verify(results: Required<MailboxRecovery>[], local: MailboxGuidList[], input: PushInput): Promise<string> {
  const checked = results.filter((r) => r.result === 'pushed' || r.result === 'copied');
  if (checked.length === 0) return '';
  try {
    const mine = new Map(local.map((m) => [m.name, m]));
    const absent = await absentOnTarget(checked.map((r) => ({ name: r.name, uniqueid: mine.get(r.name)?.uniqueid ?? '', guids: mine.get(r.name)?.guids ?? [] })), input);
    for (const r of checked) {
      const { guids, removed } = absent.get(r.name)!;
      // after a copy, only what the new master never held counts as missing: what its users removed was left out
      if (r.result === 'copied') r.missing = guids.filter((g) => !removed.has(g)).length;
      else if (guids.length) r.detail = `${guids.length} message(s) expunged on the new master after the failover stay expunged`;
    }
    return '';
  } catch (err) {
    return `could not verify on the new master: ${(err as Error).message}`;
  }
}
