// What a slot holds of named mailboxes, from their index headers (`mbexamine`, which works on a stopped slot and,
// under the mailbox lock, on a running one). Equal summaries on master and replica (uniqueid, message count,
// UIDVALIDITY, last UID, highest modseq) mean the replica has every change of that mailbox: every change bumps the
// modseq, and replication copies it. Measured: one mbexamine for a few mailboxes takes ~15 ms.
import { execa } from 'execa';
import { ALL_MAILBOXES, mailboxProblem, type MailboxSummary__Output } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from './install.js';

/** As the contract carries it: `name` is the internal name, as sync logs write it (`user.bob^smith`). */
export type MailboxSummary = MailboxSummary__Output;

/** A UID no mailbox reaches: mbexamine then prints the header and no message records. */
const NO_SUCH_UID = '4294967295';
const BATCH = 200;

/**
 * Internal (`user.bob^smith`, or `user:bob` for a whole user, meaning their INBOX) to the external name mbexamine
 * takes with unixhierarchysep (`user/bob.smith`).
 */
export function externalName(internal: string): string {
  const name = internal.startsWith('user:') ? `user.${internal.slice(5)}` : internal;
  return name.replaceAll('.', '/').replaceAll('^', '.');
}

/** Names come from sync logs, the coordinator or a partner: they reach a command line only if they look like mailboxes. */
export function isPlausibleMailbox(name: string): boolean {
  return mailboxProblem(name) === undefined;
}

/**
 * A folder its user deleted, kept by delayed delete (`delete_mode: delayed`) as `DELETED.<old name>.<hex>` with its
 * files where they were until cyr_expire removes it. Not mail anyone can read: neither seeded nor pushed back.
 */
export function isDelayedDeleted(name: string): boolean {
  return name.startsWith('DELETED.');
}

/** Parses mbexamine's output: one block per mailbox that exists, starting `Examining NAME... `. */
export function parseMbexamine(output: string): Map<string, Omit<MailboxSummary, 'name' | 'exists'>> {
  const out = new Map<string, Omit<MailboxSummary, 'name' | 'exists'>>();
  const blocks = output.split(/^Examining /m).slice(1);
  for (const block of blocks) {
    const name = block.slice(0, block.indexOf('... '));
    const num = (re: RegExp) => Number(block.match(re)?.[1] ?? NaN);
    out.set(name, {
      uniqueid: block.match(/Unique ID: (\S+)/)?.[1] ?? '',
      messages: num(/Number of Messages: (\d+)/),
      uidvalidity: num(/UIDValidity: (\d+)/),
      lastUid: num(/Last UID: (\d+)/),
      highestModseq: num(/Highest Mod Sequence: (\d+)/),
    });
  }
  return out;
}

/** The reverse of externalName: `user/bob.smith/Sent` → `user.bob^smith.Sent`. */
export function internalName(external: string): string {
  return external.replaceAll('.', '^').replaceAll('/', '.');
}

/**
 * The most output a tool may give: mbexamine prints a line per message record. Node's longest string is a little
 * under 512 MiB (v20), so a larger limit would end in a string-length error instead of execa's clear one.
 */
const TOOL_OUTPUT_LIMIT = 512 * 1024 * 1024;

/** A one-shot tool run as cyrus (asCyrusTool), its output kept in full, never rejecting. */
function runTool(binary: string, args: string[], timeoutMs: number) {
  const { file, args: argv } = asCyrusTool(binary, args);
  return execa(file, argv, { reject: false, timeout: timeoutMs, all: true, maxBuffer: TOOL_OUTPUT_LIMIT });
}

/** `WHAT exited N: its last two lines`, for a tool that failed. */
function toolFailure(what: string, result: Awaited<ReturnType<typeof runTool>>): Error {
  return new Error(`${what} exited ${result.exitCode ?? result.signal}: ${(result.all ?? '').trim().split('\n').slice(-2).join(' | ')}`);
}

async function examineAll(imapdConf: string, timeoutMs: number): Promise<string> {
  const result = await runTool(cyrusBinary('mbexamine'), ['-C', imapdConf, '-u', NO_SUCH_UID], timeoutMs);
  if (result.exitCode !== 0) throw toolFailure('mbexamine', result);
  return result.stdout;
}

/** Every mailbox the slot holds (mbexamine without names examines them all), internal names, sorted. */
export async function summarizeAllMailboxes(imapdConf: string, timeoutMs = 300_000): Promise<MailboxSummary[]> {
  const out = await examineAll(imapdConf, timeoutMs);
  return [...parseMbexamine(out)].map(([name, s]) => ({ name: internalName(name), exists: true, ...s })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** Every mailbox's summary and the bytes its index header counts (Mailbox Size), from one mbexamine run. */
export async function summarizeWithSizes(imapdConf: string, timeoutMs = 300_000): Promise<(MailboxSummary & { bytes: number })[]> {
  const out = await examineAll(imapdConf, timeoutMs);
  const sizes = new Map<string, number>();
  for (const block of out.split(/^Examining /m).slice(1)) sizes.set(block.slice(0, block.indexOf('... ')), Number(/Mailbox Size: (\d+) bytes/.exec(block)?.[1] ?? 0));
  return [...parseMbexamine(out)].map(([name, s]) => ({ name: internalName(name), exists: true, ...s, bytes: sizes.get(name) ?? 0 })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * What the index headers count, in bytes: live mailboxes, and delayed-deleted ones (`DELETED.…`: Cyrus 3.6 keeps
 * their files in place under spool/uuid, only their name changes). Expunged messages are counted by neither.
 */
export async function indexedBytes(imapdConf: string, timeoutMs = 300_000): Promise<{ live: number; deleted: number }> {
  const out = await examineAll(imapdConf, timeoutMs);
  const total = { live: 0, deleted: 0 };
  for (const block of out.split(/^Examining /m).slice(1)) {
    const size = Number(/Mailbox Size: (\d+) bytes/.exec(block)?.[1] ?? 0);
    if (block.startsWith('DELETED/')) total.deleted += size;
    else total.live += size;
  }
  return total;
}

export async function summarizeMailboxes(imapdConf: string, names: readonly string[], timeoutMs = 60_000): Promise<MailboxSummary[]> {
  if (names.length === 1 && names[0] === ALL_MAILBOXES) return summarizeAllMailboxes(imapdConf);
  const unique = [...new Set(names)].filter(isPlausibleMailbox).sort();
  const out: MailboxSummary[] = [];
  for (let i = 0; i < unique.length; i += BATCH) {
    const batch = unique.slice(i, i + BATCH);
    const result = await runTool(cyrusBinary('mbexamine'), ['-C', imapdConf, '-u', NO_SUCH_UID, ...batch.map(externalName)], timeoutMs);
    if (result.exitCode !== 0) throw toolFailure('mbexamine', result);
    const found = parseMbexamine(result.stdout);
    for (const name of batch) {
      const s = found.get(externalName(name));
      out.push(s ? { name, exists: true, ...s } : { name, exists: false, uniqueid: '', messages: 0, uidvalidity: 0, lastUid: 0, highestModseq: 0 });
    }
  }
  return out;
}

/**
 * Appends a MAILBOX line naming a mailbox that does not exist to the slot's sync log (`cyr_synclog`): the rolling
 * sync_client consumes it like any change (measured: no error, nothing created) without touching anyone's mail.
 */
export const MARKER_MAILBOX = 'user.slotctl-replication-marker';

export async function writeSyncMarker(imapdConf: string): Promise<void> {
  const result = await runTool(cyrusBinary('cyr_synclog'), ['-C', imapdConf, '-m', MARKER_MAILBOX], 10_000);
  if (result.exitCode !== 0) throw toolFailure('cyr_synclog', result);
}

/** Per message record of mbexamine's full output: its GUID, unless the record is expunged. */
export function parseGuids(block: string): string[] {
  return parseRecords(block).live;
}

/**
 * The GUIDs of one mbexamine block's records: those the mailbox holds, and those it held and expunged. Cyrus 3.6's
 * mbexamine prints live records only (ITER_SKIP_EXPUNGED; checked on this host), so `expunged` is empty from it;
 * `expungedGuids` below finds those another way.
 */
export function parseRecords(block: string): { live: string[]; expunged: string[] } {
  const live: string[] = [];
  const expunged: string[] = [];
  for (const record of block.split(/^\d{6}> /m).slice(1)) {
    const guid = record.match(/GUID:([0-9a-f]{40})/)?.[1];
    if (guid) (/INTERNALFLAGS:[^\n>]*EXPUNGED/.test(record) ? expunged : live).push(guid);
  }
  return { live, expunged };
}

/**
 * The message GUIDs (EMAILID's source: the same content has the same GUID on every slot) of each named mailbox, one
 * mbexamine per mailbox. Recovery checks that every message of the old slot is on the new master with them.
 */
export interface MailboxGuidList {
  name: string;
  exists: boolean;
  uniqueid: string;
  guids: string[];
  /** What it held and expunged (records still in its index), when asked for: see `expungedGuids`. */
  expungedGuids: string[];
  /** Its delayed-deleted copies and their messages, asked for with the expunged ones: see `deletedPattern`. */
  deleted: DeletedCopy[];
}

/** A mailbox its user deleted, kept by delayed delete under `DELETED.<name>.<hex>` with its uniqueid (measured, 3.6). */
export interface DeletedCopy {
  name: string;
  uniqueid: string;
  guids: string[];
}

/** The UIDs `unexpunge -l` lists: the records of a mailbox's index flagged expunged and not yet removed by cyr_expire. */
export function parseUnexpungeList(output: string): number[] {
  return [...output.matchAll(/^UID: (\d+)$/gm)].map((m) => Number(m[1]));
}

/** `sha1sum` output (`HASH  PATH` per line) as PATH → HASH; lines of files it could not read are not there. */
export function parseSha1sum(output: string): Map<string, string> {
  return new Map([...output.matchAll(/^([0-9a-f]{40})  (.+)$/gm)].map((m) => [m[2]!, m[1]!]));
}

/**
 * The GUIDs of the messages a mailbox holds expunged. mbexamine leaves expunged records out (parseRecords), but
 * `unexpunge -l` lists their UIDs, and with `expunge_mode: delayed` (the slots' config) a message's file stays in
 * the mailbox's data directory (`mbpath`) as `UID.` until cyr_expire removes record and file together. A message's
 * GUID is the SHA-1 of that file (checked on this host against mbexamine's GUIDs). Read as cyrus (sha1sum through
 * setpriv), not as root: the directory is Cyrus's, and a link placed there can then show nothing cyrus may not
 * read. A record whose file is gone (cyr_expire ran in between) is missing from the answer.
 */
export async function expungedGuids(imapdConf: string, external: string, timeoutMs = 120_000): Promise<string[]> {
  const tool = (binary: string, args: string[]) => runTool(binary, args, timeoutMs);
  const listed = await tool(cyrusBinary('unexpunge'), ['-C', imapdConf, '-l', external]);
  if (listed.exitCode !== 0) throw toolFailure(`unexpunge -l ${external}`, listed);
  const uids = parseUnexpungeList(listed.stdout);
  if (!uids.length) return [];
  const where = await tool(cyrusBinary('mbpath'), ['-C', imapdConf, external]);
  const dir = where.stdout.trim();
  if (where.exitCode !== 0 || !dir.startsWith('/') || dir.includes('\n') || dir.split('/').includes('..')) {
    throw new Error(`mbpath ${external} gave no data directory (exit ${where.exitCode ?? where.signal}): ${(where.all ?? '').trim().slice(0, 200)}`);
  }
  const guids: string[] = [];
  for (let i = 0; i < uids.length; i += 500) {
    // exit 1 when a file is gone: the others are still hashed, and what is not in the output is not known
    const hashed = await tool('sha1sum', ['--', ...uids.slice(i, i + 500).map((uid) => `${dir}/${uid}.`)]);
    guids.push(...parseSha1sum(hashed.stdout).values());
  }
  return guids;
}

/**
 * The delayed-deleted copies of a mailbox: `DELETED.<name>.<hex>`, one per delete (the hex is its time). Measured on
 * Cyrus 3.6: the copy keeps the mailbox's uniqueid and messages, and `mbexamine DELETED/<name>/%` lists just the
 * copies of that name (not those of its subfolders, one level further down). Names never hold `%` or `*`
 * (mailboxProblem), so the pattern matches nothing else.
 */
const deletedPrefix = (name: string) => `${externalName(`DELETED.${name}`)}/`;
const deletedPattern = (name: string) => `${deletedPrefix(name)}%`;

/** The blocks of mbexamine output that are `name`'s delayed-deleted copies (other blocks are left out). */
export function parseDeletedCopies(output: string, name: string): DeletedCopy[] {
  const prefix = deletedPrefix(name);
  return output.split(/^Examining /m).slice(1).filter((block) => block.startsWith(prefix)).map((block) => {
    // what its user had expunged before the delete was held there too
    const { live, expunged } = parseRecords(block);
    return { name: internalName(block.slice(0, block.indexOf('... '))), uniqueid: block.match(/Unique ID: (\S+)/)?.[1] ?? '', guids: [...live, ...expunged] };
  });
}

/**
 * The message GUIDs of each named mailbox (one mbexamine per mailbox) and, with `withExpunged`, those it holds
 * expunged and its delayed-deleted copies (their pattern in the same mbexamine run). Recovery checks with them that
 * every message of the old slot is on the new master, and leaves out of an IMAP copy what the new master's users
 * expunged or deleted after the failover.
 */
export async function mailboxGuids(imapdConf: string, names: readonly string[], timeoutMs = 120_000, withExpunged = false): Promise<MailboxGuidList[]> {
  const out: MailboxGuidList[] = [];
  for (const name of [...new Set(names)].filter(isPlausibleMailbox)) {
    // the mailbox and, with withExpunged, its deleted copies' pattern in one run (a process less per mailbox)
    const args = ['-C', imapdConf, externalName(name), ...(withExpunged ? [deletedPattern(name)] : [])];
    const result = await runTool(cyrusBinary('mbexamine'), args, timeoutMs);
    if (result.exitCode !== 0) throw toolFailure(`mbexamine ${args.slice(2).join(' ')}`, result);
    const block = result.stdout.split(/^Examining /m).slice(1).find((b) => b.startsWith(`${externalName(name)}... `));
    const records = block ? parseRecords(block) : undefined;
    const deleted = withExpunged ? parseDeletedCopies(result.stdout, name) : [];
    if (!block || !records) {
      out.push({ name, exists: false, uniqueid: '', guids: [], expungedGuids: [], deleted });
      continue;
    }
    const expunged = withExpunged ? [...new Set([...records.expunged, ...(await expungedGuids(imapdConf, externalName(name), timeoutMs))])] : records.expunged;
    out.push({ name, exists: true, uniqueid: block.match(/Unique ID: (\S+)/)?.[1] ?? '', guids: records.live, expungedGuids: expunged, deleted });
  }
  return out;
}

/** Logs a user-level change for each user (`cyr_synclog -u`): the rolling sync_client then syncs the whole user. */
export async function logUserSync(imapdConf: string, users: readonly string[]): Promise<void> {
  for (const user of users) {
    if (!isPlausibleMailbox(user) || user.includes('/')) throw new Error(`"${user}" is not a user name`);
    const result = await runTool(cyrusBinary('cyr_synclog'), ['-C', imapdConf, '-u', user], 10_000);
    if (result.exitCode !== 0) throw toolFailure(`cyr_synclog -u ${user}`, result);
  }
}

/**
 * Logs a sync of each user (`cyr_synclog -u`) and each mailbox (`-m`, internal names), four at a time, after the
 * replication marker: a log whose last write was cut by a full partition ends in half a line, and the first line
 * appended joins it (the reader drops it), so that first line is one that names no mail. A name that does not look
 * like one is skipped and returned.
 */
export async function logSyncLines(imapdConf: string, users: readonly string[], mailboxes: readonly string[]): Promise<string[]> {
  await writeSyncMarker(imapdConf);
  const skipped: string[] = [];
  const jobs: string[][] = [];
  for (const user of users) {
    if (isPlausibleMailbox(user) && !user.includes('/')) jobs.push(['-u', user]);
    else skipped.push(user);
  }
  for (const name of mailboxes) {
    if (isPlausibleMailbox(name)) jobs.push(['-m', name]);
    else skipped.push(name);
  }
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < jobs.length) {
      const job = jobs[next++]!;
      const result = await runTool(cyrusBinary('cyr_synclog'), ['-C', imapdConf, ...job], 10_000);
      if (result.exitCode !== 0) {
        failed = true;
        throw toolFailure(`cyr_synclog ${job.join(' ')}`, result);
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return skipped;
}
