// Acting as root below a directory Cyrus owns without following a link Cyrus could have put there. Each step opens
// the next name with O_NOFOLLOW relative to a directory already open (through /proc/self/fd/N: Node's stand-in for
// openat), so a symlink anywhere below the opened root is refused with an UnsafePathError instead of followed, and
// ownership is set on the open descriptor (fchown), never on a name that could be swapped in between.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { UnsafePathError } from '@slotctl/shared';

export type Owner = { uid: number; gid: number };

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

const FIX_HINT = (path: string) =>
  `only root and cyrus can write there: find out who made it, remove it (rm ${path}) and start the slot again (slotctl slot start SLOT); the agent creates the directory itself`;

/** Why `path` could not be opened as a directory without following it: a named refusal, or the error itself. */
async function refusal(err: unknown, path: string, entry: string): Promise<unknown> {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'ELOOP' && code !== 'ENOTDIR') return err;
  const kind = await lstat(entry).then((s) => (s.isSymbolicLink() ? 'a symlink' : 'not a directory'), () => 'not a directory');
  return new UnsafePathError(path, `${path} is ${kind}: the agent (root) does not follow links below a slot's directory, which Cyrus owns`, { hint: FIX_HINT(path) });
}

export class SafeDir {
  private constructor(
    /** For messages only: every system call goes through the open descriptor. */
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  /** Opens `path`, itself not a symlink. Its parents are trusted: the caller has checked Cyrus cannot change them. */
  static async open(path: string): Promise<SafeDir> {
    try {
      return new SafeDir(path, await open(path, DIR_FLAGS));
    } catch (err) {
      throw await refusal(err, path, path);
    }
  }

  /** The entry `name` of this directory, for a system call: resolved from the open directory, not from its path. */
  at(name: string): string {
    if (!name || name === '.' || name === '..' || name.includes('/')) throw new Error(`"${name}" is not one path component`);
    return `/proc/self/fd/${this.handle.fd}/${name}`;
  }

  /** The directory `name` in this one; with `create`, made when missing and given that owner (fchown). */
  async dir(name: string, create?: { mode: number; owner?: Owner | undefined }): Promise<SafeDir> {
    const path = join(this.path, name);
    if (create) {
      // mkdir never follows a link in its last component: a symlink there is EEXIST, then refused by the open
      await mkdir(this.at(name), create.mode).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
    }
    let handle: FileHandle;
    try {
      handle = await open(this.at(name), DIR_FLAGS);
    } catch (err) {
      throw await refusal(err, path, this.at(name));
    }
    const dir = new SafeDir(path, handle);
    if (create?.owner) await dir.own(create.owner);
    return dir;
  }

  /** `rel` (a/b/c) below this directory, each step as `dir`; the directories in between are closed again. */
  async walk(rel: string, create?: { mode: number; owner?: Owner | undefined }): Promise<SafeDir> {
    let current: SafeDir = this;
    for (const name of rel.split('/').filter(Boolean)) {
      const next: SafeDir = await current.dir(name, create).finally(() => (current === this ? undefined : current.close()));
      current = next;
    }
    if (current === this) throw new Error(`"${rel}" names no directory below ${this.path}`);
    return current;
  }

  /** fchown of this directory, when its owner differs. */
  async own(owner: Owner): Promise<void> {
    const s = await this.handle.stat();
    if (s.uid !== owner.uid || s.gid !== owner.gid) await this.handle.chown(owner.uid, owner.gid);
  }

  /**
   * Writes `name` atomically (a new temporary file, created exclusively and never through a link, given its mode and
   * owner on its descriptor, then renamed over `name`: a link there is replaced, not followed).
   */
  async writeFile(name: string, data: string | Uint8Array, mode: number, owner?: Owner): Promise<void> {
    const temp = `${name}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const file = await open(this.at(temp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await file.writeFile(data);
      if (owner) await file.chown(owner.uid, owner.gid);
      await file.chmod(mode); // not the umask's idea of it
      await file.sync();
      await file.close();
      await rename(this.at(temp), this.at(name));
    } catch (err) {
      await file.close().catch(() => undefined);
      await unlink(this.at(temp)).catch(() => undefined);
      throw err;
    }
    await this.handle.sync();
  }

  /** The content of the regular file `name`; a symlink is refused. */
  async readFile(name: string): Promise<string> {
    let file: FileHandle;
    try {
      file = await open(this.at(name), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafePathError(join(this.path, name), `${join(this.path, name)} is a symlink: the agent (root) does not read through links below a slot's directory`, { hint: FIX_HINT(join(this.path, name)) });
      throw err;
    }
    try {
      return await file.readFile('utf8');
    } finally {
      await file.close();
    }
  }

  list(): Promise<string[]> {
    return readdir(`/proc/self/fd/${this.handle.fd}`);
  }

  /** Removes the entry `name` (a link itself, never what it points to). */
  remove(name: string): Promise<void> {
    return unlink(this.at(name));
  }

  /** Moves the entry `name` into `target` as `newName` (both directories open: no path is followed). */
  move(name: string, target: SafeDir, newName: string): Promise<void> {
    return rename(this.at(name), target.at(newName));
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

/** Runs `fn` with `dir`, closing it afterwards whatever happens. */
export async function using<T>(dir: SafeDir | Promise<SafeDir>, fn: (d: SafeDir) => Promise<T>): Promise<T> {
  const d = await dir;
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}
