// Can the user Cyrus runs as reach a slot's files? Computed from modes, owners and groups, walking from / with lstat
// (no access(2): the agent is root, and setpriv to test as cyrus would cost a process per path). A directory Cyrus
// cannot traverse made every cyrmaster exit with code 78 and nothing more; this names the directory and the fix.
import type { Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { CYRUS_GROUP } from '../cyrus/install.js';
import type { CyrusIdentity } from '../slot/roots.js';

/** Who Cyrus runs as, with names for the messages. */
export interface CyrusUser extends CyrusIdentity {
  /** 'the cyrus user' (the agent runs as root), or the agent's own user. */
  label: string;
  userName: (uid: number) => string;
  groupName: (gid: number) => string;
}

export type Need = 'read' | 'write';

interface Stat {
  mode: number;
  uid: number;
  gid: number;
}

/** Pure: the permission bits (rwx, 0–7) that apply to `who` for a file with this owner and group (no ACLs). */
export function bitsFor(stat: Stat, who: CyrusIdentity): number {
  if (who.uid === 0) return 7;
  if (stat.uid === who.uid) return (stat.mode >> 6) & 7;
  if (who.groups.includes(stat.gid) || stat.gid === who.gid) return (stat.mode >> 3) & 7;
  return stat.mode & 7;
}

/** Pure: `drwx------` as ls prints it. */
export function modeString(mode: number): string {
  const type = (mode & 0o170000) === 0o040000 ? 'd' : (mode & 0o170000) === 0o120000 ? 'l' : '-';
  const rwx = (bits: number, special: boolean, s: string) => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return type + rwx(mode >> 6, !!(mode & 0o4000), 's') + rwx(mode >> 3, !!(mode & 0o2000), 's') + rwx(mode, !!(mode & 0o1000), 't');
}

/** Pure: the chmod/chown that gives `who` the missing `bits` (1 traverse, 4 read, 3 write and traverse) on `path`. */
export function accessFix(path: string, stat: Stat, who: CyrusIdentity, bits: number): string {
  const letters = `${bits & 4 ? 'r' : ''}${bits & 2 ? 'w' : ''}${bits & 1 ? 'x' : ''}`;
  if (stat.uid === who.uid) return `chmod u+${letters} ${path}`;
  if (who.groups.includes(stat.gid) || stat.gid === who.gid) return `chmod g+${letters} ${path}`;
  // writing is Cyrus's own directory's business: give it to cyrus, never open it to everyone
  if (bits & 2) return `chown ${who.uid}:${who.gid} ${path} (the agent gives the slot's directories to cyrus:${CYRUS_GROUP} itself when it runs as root)`;
  return `chmod o+${letters} ${path}, or give it to group ${CYRUS_GROUP}`;
}

const VERB: Record<number, string> = { 1: 'traverse', 4: 'read', 3: 'write to' };

/** A symlink owned by root or by the agent's own user may be followed; anyone else's could point anywhere tomorrow. */
const trusted = (uid: number) => uid === 0 || uid === process.getuid?.();

/**
 * Why `who` cannot reach `target` (an absolute path) and `need` it — read a file, or write into a directory — or
 * undefined when it can. Every directory from / down must be traversable; a symlink on the way is followed only when
 * root (or the agent's user) owns it.
 */
export async function accessProblem(target: string, need: Need, who: CyrusUser, stat: (path: string) => Promise<Stats> = lstat): Promise<string | undefined> {
  if (!isAbsolute(target)) return `${target} is not an absolute path`;
  const parts = target.split('/').filter(Boolean);
  let at = '/';
  let hops = 0;
  const describe = (path: string, s: Stat) => `${path} (${modeString(s.mode)} ${who.userName(s.uid)}:${who.groupName(s.gid)})`;
  const lacking = async (path: string, bits: number): Promise<string | undefined> => {
    const s = await stat(path);
    const missing = bits & ~bitsFor(s, who);
    if (!missing) return undefined;
    return `${who.label} (uid ${who.uid}) cannot ${VERB[bits]} ${describe(path, s)}: ${accessFix(path, s, who, bits)}`;
  };
  try {
    for (let i = 0; i < parts.length; i++) {
      const problem = await lacking(at, 1);
      if (problem) return problem;
      const next = join(at, parts[i]!);
      const s = await stat(next);
      if (s.isSymbolicLink()) {
        if (!trusted(s.uid)) return `${next} is a symlink owned by ${who.userName(s.uid)} (uid ${s.uid}), not followed: point the slot at the real path`;
        if (++hops > 40) return `${next}: too many levels of symbolic links`;
        const link = await readlink(next);
        // the rest of the walk goes on from the link's target (relative to the directory holding the link)
        parts.splice(0, i + 1, ...(isAbsolute(link) ? link : join(dirname(next), link)).split('/').filter(Boolean));
        at = '/';
        i = -1;
        continue;
      }
      at = next;
    }
    const s = await stat(at);
    if (need === 'write' && !s.isDirectory()) return `${at} is not a directory`;
    if (need === 'read' && !s.isFile()) return `${at} is not a regular file`;
    return await lacking(at, need === 'write' ? 3 : 4);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') return `${e.path ?? target} does not exist`;
    throw err;
  }
}
