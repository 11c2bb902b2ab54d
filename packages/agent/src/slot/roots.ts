// A slot's two roots (its meta and data paths): where they may be, and opening them for the agent (root) to act
// below. A root must lie under one of the machine's declared disks (or, when it declares none, outside the system's
// own directories), and nothing above it may be changeable by Cyrus: whoever can replace a parent can put a link
// where the root was, and the agent would then create, chown and write wherever that link points.
import { lstat, mkdir, realpath } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UnsafePathError } from '@slotctl/shared';
import { SafeDir, type Owner } from './safe-fs.js';

/** The user Cyrus runs as, with every group it has (setpriv --init-groups). */
export type CyrusIdentity = Owner & { groups: readonly number[] };

/** Never a slot's place, whatever the disks say: the system's own files. */
export const SYSTEM_DIRS = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/libx32', '/proc', '/root', '/run', '/sbin', '/sys', '/usr'] as const;

const under = (path: string, dir: string) => path.startsWith(`${dir}/`);

/** Pure: why a slot root may not be at `path` on a machine whose declared disks are mounted at `disks`. */
export function placementProblem(path: string, disks: readonly string[]): string | undefined {
  const system = SYSTEM_DIRS.find((d) => path === d || under(path, d));
  if (path === '/' || system) return `${path} is ${system ? `under ${system}, a system directory` : 'the root directory'}`;
  if (disks.length && !disks.some((d) => under(path, d))) return `${path} is not under any disk declared for this machine (${disks.join(', ')})`;
  return undefined;
}

/** Pure: why Cyrus could replace the entries of a directory with this owner and mode (undefined: it cannot). */
export function changeableBy(stat: { uid: number; gid: number; mode: number }, cyrus: CyrusIdentity): string | undefined {
  if (stat.uid === cyrus.uid) return 'owned by cyrus';
  // sticky (like /tmp): only an entry's owner may rename or remove it, and no entry on the way is Cyrus's
  if (stat.mode & 0o1000) return undefined;
  if (stat.mode & 0o002) return 'writable by everyone';
  if (stat.mode & 0o020 && cyrus.groups.includes(stat.gid)) return `writable by group ${stat.gid}, which cyrus is in`;
  return undefined;
}

/** Every directory from / down to `path`: /, /a, /a/b. */
function chain(path: string): string[] {
  const out = ['/'];
  let at = '';
  for (const part of path.split('/').filter(Boolean)) out.push((at = `${at}/${part}`));
  return out;
}

async function checkParents(root: string, parent: string, cyrus: CyrusIdentity): Promise<string> {
  const real = await realpath(parent);
  // the path as written (a link on the way must not be Cyrus's) and as resolved (no directory Cyrus can change)
  for (const dir of chain(parent)) {
    if ((await lstat(dir)).uid === cyrus.uid) throw unsafeParent(root, dir, 'owned by cyrus');
  }
  for (const dir of chain(real)) {
    const problem = changeableBy(await lstat(dir), cyrus);
    if (problem) throw unsafeParent(root, dir, problem);
  }
  return real;
}

function unsafeParent(root: string, dir: string, problem: string): UnsafePathError {
  return new UnsafePathError(dir, `${dir}, a parent of the slot directory ${root}, is ${problem}: Cyrus could put a link in place of the slot directory`, {
    hint: `make ${dir} owned by root and writable by root only (chown root ${dir}; chmod go-w ${dir}), or move the slot's paths`,
  });
}

/**
 * Opens a slot root, creating it (and, as root-owned 0755 directories, its missing parents) first. With `cyrus`
 * (the agent runs as root) the root is given to cyrus:mail and its parents are checked; without, only links are
 * refused. Throws UnsafePathError for a root out of place, a parent Cyrus could change, or a root that is a link.
 */
export async function openSlotRoot(root: string, disks: readonly string[], cyrus: CyrusIdentity | undefined): Promise<SafeDir> {
  const problem = placementProblem(root, disks);
  if (problem) {
    throw new UnsafePathError(root, `slot directory ${problem}`, {
      hint: disks.length ? "put the slot's data_path and meta_path under one of the machine's disks in the cluster file, or declare the disk that holds them" : "put the slot's data_path and meta_path on a data disk (and declare the machine's disks in the cluster file)",
    });
  }
  const parent = dirname(root);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  const real = cyrus ? await checkParents(root, parent, cyrus) : await realpath(parent);
  const path = join(real, basename(root));
  await mkdir(path, { mode: 0o750 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const dir = await SafeDir.open(path);
  if (cyrus) {
    try {
      await dir.own(cyrus);
    } catch (err) {
      await dir.close();
      throw err;
    }
  }
  return dir;
}
