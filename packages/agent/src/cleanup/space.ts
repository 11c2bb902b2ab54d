// What a slot's partitions hold: the file system's free bytes and inodes, and the bytes that cleanup would free —
// delayed-deleted folders (mailboxes renamed DELETED.…, their files where they were) and expunged messages still on
// disk (message files of the data partition beyond what every index header counts).
import { readdir, lstat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { PartitionReport } from '@slotctl/shared';
import { indexedBytes } from '../cyrus/mailboxes.js';

/** Bytes of regular files under `dir` (symlinks not followed); `match` limits which files count. */
export async function treeBytes(dir: string, match: (name: string) => boolean = () => true): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) total += await treeBytes(path, match);
    else if (e.isFile() && match(e.name)) total += (await lstat(path).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** A message file of a Cyrus mailbox directory: `123.` */
const isMessage = (name: string) => /^\d+\.$/.test(name);

export async function partitionReport(role: 'data' | 'meta', path: string, imapdConf: string | undefined): Promise<PartitionReport> {
  const measuredAt = new Date().toISOString();
  try {
    const fs = await statfs(path);
    let deletedBytes = 0;
    let expungedBytes = 0;
    if (role === 'data' && imapdConf) {
      const onDisk = await treeBytes(path, isMessage);
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
    };
  } catch (err) {
    return { role, path, totalBytes: 0, freeBytes: 0, totalInodes: 0, freeInodes: 0, deletedBytes: 0, expungedBytes: 0, measuredAt, error: (err as Error).message };
  }
}
