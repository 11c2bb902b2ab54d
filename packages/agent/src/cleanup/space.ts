// What a slot's partitions hold: the file system's free bytes and inodes, and the bytes that cleanup would free —
// delayed-deleted folders (mailboxes renamed DELETED.…, their files where they were) and expunged messages still on
// disk (message files of the data partition beyond what every index header counts).
import { readdir, lstat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { PartitionReport } from '@slotctl/shared';
import { indexedBytes } from '../cyrus/mailboxes.js';

/** A message file of a Cyrus mailbox directory: `123.` */
const isMessage = (name: string) => /^\d+\.$/.test(name);

/**
 * What a slot's own tree under `dir` takes: bytes of its regular files and its inodes (files, directories, links;
 * links not followed), and the bytes of its message files. One walk; a file gone meanwhile counts nothing.
 */
export async function treeUsage(dir: string): Promise<{ bytes: number; inodes: number; messageBytes: number }> {
  const out = { bytes: 0, inodes: 0, messageBytes: 0 };
  // a file with several links (Cyrus's single-instance store links one message into many mailboxes) counts once
  const linked = new Set<string>();
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) {
        out.inodes++;
        await walk(path);
        continue;
      }
      const st = await lstat(path).catch(() => undefined);
      if (!st) continue;
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (linked.has(key)) continue;
        linked.add(key);
      }
      out.inodes++;
      if (e.isFile()) {
        out.bytes += st.size;
        if (isMessage(e.name)) out.messageBytes += st.size;
      }
    }
  };
  await walk(dir);
  return out;
}

/** `usage: false`: the file system's figures only (no walk of the slot's tree: its used bytes and inodes are 0). */
export async function partitionReport(role: 'data' | 'meta', path: string, imapdConf: string | undefined, options: { usage?: boolean } = {}): Promise<PartitionReport> {
  const measuredAt = new Date().toISOString();
  try {
    const fs = await statfs(path);
    let deletedBytes = 0;
    let expungedBytes = 0;
    const used = options.usage === false && !(role === 'data' && imapdConf) ? { bytes: 0, inodes: 0, messageBytes: 0 } : await treeUsage(path);
    if (role === 'data' && imapdConf) {
      const onDisk = used.messageBytes;
      const counted = await indexedBytes(imapdConf);
      deletedBytes = counted.deleted;
      expungedBytes = Math.max(0, onDisk - counted.live - counted.deleted);
    }
    return {
      role,
      path,
      totalBytes: fs.blocks * fs.bsize,
      freeBytes: fs.bavail * fs.bsize,
      totalInodes: fs.files,
      freeInodes: fs.ffree,
      deletedBytes,
      expungedBytes,
      measuredAt,
      error: '',
      usedBytes: used.bytes,
      usedInodes: used.inodes,
    };
  } catch (err) {
    return { role, path, totalBytes: 0, freeBytes: 0, totalInodes: 0, freeInodes: 0, deletedBytes: 0, expungedBytes: 0, measuredAt, error: (err as Error).message, usedBytes: 0, usedInodes: 0 };
  }
}
