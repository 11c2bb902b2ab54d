// A returning old master's leftover sync logs: they name the changes its replica may never have received. Before the
// slot may start in any sync role they are moved (never deleted) into META/quarantine/<epoch>-<time>/, where no
// rolling sync_client reads them; recovery pushes the mailboxes they name and then marks the folder RECOVERED.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { mailboxOfLine, replayOrder } from './backlog.js';
import { MARKER_MAILBOX } from '../cyrus/mailboxes.js';
import { cyrusOwner } from '../slot/files.js';
import type { SlotLayout } from '../slot/layout.js';
import { openSlotRoot } from '../slot/roots.js';
import { MOVE_CHANNEL } from '../slot/render.js';
import { using, type SafeDir } from '../slot/safe-fs.js';

export const RECOVERED_MARK = 'RECOVERED';

export interface QuarantineReport {
  dir: string;
  /** `<folder>/<file>` of every quarantined log not yet recovered. */
  files: string[];
  /** Internal names they name (`user:NAME` lines are reported as the user's INBOX, `user.NAME`). */
  mailboxes: string[];
}

const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');

/** The slot's meta root, opened to act below it as root without following links (slot/safe-fs.ts). */
async function metaRoot(layout: SlotLayout): Promise<SafeDir> {
  return openSlotRoot(layout.metaPath, [], await cyrusOwner());
}

const below = (layout: SlotLayout, dir: string) => relative(layout.metaPath, dir);

/** Moves every sync log out of the sync dir; returns the folder they went to, or undefined when there were none. */
export async function quarantineLeftovers(layout: SlotLayout, epoch: number): Promise<string | undefined> {
  if (!existsSync(layout.syncDir)) return undefined; // a slot new on this machine: nothing there yet
  return using(metaRoot(layout), (meta) =>
    using(meta.walk(below(layout, layout.syncDir)), async (sync) => {
      const names = replayOrder(await sync.list());
      // a replica move's channel (render.ts MOVE_CHANNEL): what it had not sent to the new slot is at risk as well
      const channel = existsSync(join(layout.syncDir, MOVE_CHANNEL)) ? await sync.dir(MOVE_CHANNEL).catch(() => undefined) : undefined;
      const moved = channel ? replayOrder(await channel.list()) : [];
      if (names.length === 0 && moved.length === 0) {
        await channel?.close();
        return undefined;
      }
      const name = `${epoch}-${stamp()}`;
      return using(meta.walk(`${below(layout, layout.quarantineDir)}/${name}`, { mode: 0o750 }), async (folder) => {
        // the order they would have been replayed in, kept in the name
        for (const [i, file] of names.entries()) await sync.move(file, folder, `${String(i).padStart(3, '0')}-${file}`);
        for (const [i, file] of moved.entries()) await channel!.move(file, folder, `${String(names.length + i).padStart(3, '0')}-${MOVE_CHANNEL}-${file}`);
        await channel?.close();
        return join(layout.quarantineDir, name);
      });
    }),
  );
}

/** Each folder of the quarantine (a link or a file among them is skipped: it is no folder the agent made). */
async function eachFolder(layout: SlotLayout, fn: (name: string, folder: SafeDir, files: string[]) => Promise<void>): Promise<void> {
  if (!existsSync(layout.quarantineDir)) return;
  await using(metaRoot(layout), (meta) =>
    using(meta.walk(below(layout, layout.quarantineDir)), async (q) => {
      for (const name of (await q.list()).sort()) {
        const folder = await q.dir(name).catch(() => undefined);
        if (folder) await using(folder, async () => fn(name, folder, (await folder.list()).sort()));
      }
    }),
  );
}

export async function readQuarantine(layout: SlotLayout): Promise<QuarantineReport> {
  const report: QuarantineReport = { dir: layout.quarantineDir, files: [], mailboxes: [] };
  const mailboxes = new Set<string>();
  await eachFolder(layout, async (name, folder, files) => {
    if (files.includes(RECOVERED_MARK)) return;
    const named = new Set<string>();
    let other = false;
    for (const file of files) {
      for (const line of (await folder.readFile(file)).split('\n')) {
        if (!line.trim()) continue;
        const m = mailboxOfLine(line);
        if (m === MARKER_MAILBOX) continue;
        if (m) named.add(m.startsWith('user:') ? `user.${m.slice(5)}` : m);
        else other = true;
      }
    }
    // logs that name nothing but slotctl's own replication marker hold no mail: nothing to recover (kept, marked)
    if (named.size === 0 && !other) {
      await folder.writeFile(RECOVERED_MARK, `nothing to recover: only the replication marker ${new Date().toISOString()}\n`, 0o644);
      return;
    }
    for (const file of files) report.files.push(`${name}/${file}`);
    for (const m of named) mailboxes.add(m);
  });
  report.mailboxes = [...mailboxes].sort();
  return report;
}

/** After a verified recovery: every unrecovered folder gets a RECOVERED file naming the operation (files stay). */
export async function markRecovered(layout: SlotLayout, op: string): Promise<void> {
  await eachFolder(layout, async (_name, folder, files) => {
    if (!files.includes(RECOVERED_MARK)) await folder.writeFile(RECOVERED_MARK, `${op} ${new Date().toISOString()}\n`, 0o644);
  });
}
