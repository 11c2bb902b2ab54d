import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix: write a temporary file
 * beside it, fsync, rename over the target, fsync the directory (so the rename itself survives a power cut). The
 * temporary file is created exclusively and never through a link: a name someone else placed there (as root, in a
 * directory a less trusted user can write) makes the write fail instead of following it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = await writeTemp(path, data, mode);
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(dirname(path));
}

/**
 * Like writeFileAtomic, but never replaces: the whole file is put in place by link(2), which fails with EEXIST when
 * anything (a file, a link) has the name already — also one another process put there a moment ago, which a check
 * before the write would miss.
 */
export async function writeFileExclusive(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = await writeTemp(path, data, mode);
  try {
    await link(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(dirname(path));
}

/** A new temporary file beside `path` with `data`, fsynced; created exclusively and never through a link. */
async function writeTemp(path: string, data: string | Uint8Array, mode: number): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** fsync of a directory: makes a rename or a new file in it durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
