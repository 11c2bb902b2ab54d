// A returning old master's leftover sync logs: they name the changes its replica may never have received. Before the
// slot may start in any sync role they are moved (never deleted) into META/quarantine/<epoch>-<time>/, where no
// rolling sync_client reads them; recovery pushes the mailboxes they name and then marks the folder RECOVERED.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mailboxOfLine, replayOrder } from './backlog.js';
import { MARKER_MAILBOX } from '../cyrus/mailboxes.js';

export const RECOVERED_MARK = 'RECOVERED';

export interface QuarantineReport {
  dir: string;
  /** `<folder>/<file>` of every quarantined log not yet recovered. */
  files: string[];
  /** Internal names they name (`user:NAME` lines are reported as the user's INBOX, `user.NAME`). */
  mailboxes: string[];
}

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');

/** Moves every sync log out of `syncDir`; returns the folder they went to, or undefined when there were none. */
export async function quarantineLeftovers(syncDir: string, quarantineDir: string, epoch: number): Promise<string | undefined> {
  let names: string[];
  try {
    names = replayOrder(await readdir(syncDir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (names.length === 0) return undefined;
  const folder = join(quarantineDir, `${epoch}-${stamp()}`);
  await mkdir(folder, { recursive: true, mode: 0o750 });
  // the order they would have been replayed in, kept in the name
  for (const [i, name] of names.entries()) await rename(join(syncDir, name), join(folder, `${String(i).padStart(3, '0')}-${name}`));
  return folder;
}

export async function readQuarantine(quarantineDir: string): Promise<QuarantineReport> {
  const report: QuarantineReport = { dir: quarantineDir, files: [], mailboxes: [] };
  let folders: string[];
  try {
    folders = (await readdir(quarantineDir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return report;
    throw err;
  }
  const mailboxes = new Set<string>();
  for (const folder of folders) {
    const files = await readdir(join(quarantineDir, folder)).catch(() => [] as string[]);
    if (files.includes(RECOVERED_MARK)) continue;
    const named = new Set<string>();
    let other = false;
    for (const file of files.sort()) {
      for (const line of (await readFile(join(quarantineDir, folder, file), 'utf8')).split('\n')) {
        if (!line.trim()) continue;
        const m = mailboxOfLine(line);
        if (m === MARKER_MAILBOX) continue;
        if (m) named.add(m.startsWith('user:') ? `user.${m.slice(5)}` : m);
        else other = true;
      }
    }
    // logs that name nothing but slotctl's own replication marker hold no mail: nothing to recover (kept, marked)
    if (named.size === 0 && !other) {
      await writeFile(join(quarantineDir, folder, RECOVERED_MARK), `nothing to recover: only the replication marker ${new Date().toISOString()}\n`);
      continue;
    }
    for (const file of files.sort()) report.files.push(`${folder}/${file}`);
    for (const m of named) mailboxes.add(m);
  }
  report.mailboxes = [...mailboxes].sort();
  return report;
}

/** After a verified recovery: every unrecovered folder gets a RECOVERED file naming the operation (files stay). */
export async function markRecovered(quarantineDir: string, op: string): Promise<void> {
  const folders = await readdir(quarantineDir).catch(() => [] as string[]);
  for (const folder of folders) {
    const files = await readdir(join(quarantineDir, folder)).catch(() => [] as string[]);
    if (!files.includes(RECOVERED_MARK)) await writeFile(join(quarantineDir, folder, RECOVERED_MARK), `${op} ${new Date().toISOString()}\n`);
  }
}
