// A returning old master gives back what its replica never received: each mailbox its quarantined sync logs name is
// pushed to the new master with `sync_client -m` (creates a missing mailbox, merges an existing one: union of
// messages, the new master's expunges and flags kept, clashing UIDs renumbered — it never deletes there), then every
// message GUID the old slot holds in that mailbox is looked for on the new master. Measured in RECIPE.md: `-u`,
// `-r -f`, `-A`, `-O` from the returning slot changed the new master (a subscription removed, a user sync) — never used.
import { chown, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic, type Logger, type MailboxRecovery, type RecoverReport } from '@slotctl/shared';
import { asCyrus, cyrusBinary } from '../cyrus/install.js';
import { externalName, isPlausibleMailbox, mailboxGuids } from '../cyrus/mailboxes.js';
import { renderRecoverConfig, type AuthConfig, type Ports } from '../slot/render.js';
import type { SlotLayout } from '../slot/layout.js';

export interface PushInput {
  op: string;
  layout: SlotLayout;
  targetIp: string;
  mailboxes: readonly string[];
  ports: Ports;
  auth: AuthConfig;
  owner: { uid: number; gid: number } | undefined;
  /** The new master's GUIDs of these mailboxes (its agent answers over Peer.MailboxGuids). */
  targetGuids: (names: string[]) => Promise<{ name: string; exists: boolean; guids: string[] }[]>;
  log: Logger;
}

/** sync_client's words for a mailbox the new master holds under another uniqueid (it then changes nothing). */
const CLASH = /IMAP_MAILBOX_MOVED|MAILBOX_MOVED|uniqueid|UNIQUEID/;

export async function pushMailboxes(input: PushInput): Promise<RecoverReport> {
  const { layout, log } = input;
  const recoverConf = join(layout.etcDir, 'imapd-recover.conf');
  const own = await readFile(layout.imapdConf, 'utf8');
  await writeFileAtomic(recoverConf, renderRecoverConfig(own, input.targetIp, input.ports, input.auth), 0o640);
  if (input.owner) await chown(recoverConf, input.owner.uid, input.owner.gid);

  const names = [...new Set(input.mailboxes)].filter(isPlausibleMailbox).sort();
  const local = await mailboxGuids(layout.imapdConf, names);
  const results: Required<MailboxRecovery>[] = [];
  for (const m of local) {
    if (!m.exists) {
      results.push({ name: m.name, result: 'nothing', detail: 'not on the old slot (deleted or never created there)', messages: 0, missing: 0 });
      continue;
    }
    const { file, args } = asCyrus(cyrusBinary('sync_client'), ['-C', recoverConf, '-S', input.targetIp, '-o', '-v', '-l', '-m', externalName(m.name)]);
    const run = await execa(file, args, { reject: false, timeout: 300_000, all: true });
    const output = (run.all ?? '').trim().split('\n').slice(-3).join(' | ');
    if (run.exitCode === 0) results.push({ name: m.name, result: 'pushed', detail: '', messages: m.guids.length, missing: 0 });
    else if (CLASH.test(run.all ?? '')) results.push({ name: m.name, result: 'clash', detail: `the new master holds ${externalName(m.name)} under another uniqueid; nothing changed there: ${output}`, messages: m.guids.length, missing: 0 });
    else results.push({ name: m.name, result: 'failed', detail: `sync_client exit ${run.exitCode ?? run.signal}: ${output}`, messages: m.guids.length, missing: 0 });
    log.info({ mailbox: m.name, result: results.at(-1)!.result, ms: run.durationMs }, 'mailbox pushed to the new master');
  }
  // verification: every message of the old slot, by GUID, on the new master
  const toCheck = results.filter((r) => r.result !== 'nothing').map((r) => r.name);
  let error = '';
  if (toCheck.length) {
    try {
      const remote = new Map((await input.targetGuids(toCheck)).map((r) => [r.name, new Set(r.guids)]));
      const mine = new Map(local.map((m) => [m.name, m.guids]));
      for (const r of results) {
        if (r.result === 'nothing') continue;
        const there = remote.get(r.name) ?? new Set<string>();
        r.missing = (mine.get(r.name) ?? []).filter((g) => !there.has(g)).length;
      }
    } catch (err) {
      error = `could not verify on the new master: ${(err as Error).message}`;
    }
  }
  return { op: input.op, done: true, mailboxes: results, error };
}
