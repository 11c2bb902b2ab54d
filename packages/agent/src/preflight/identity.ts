// Who Cyrus runs as, for the checks' arithmetic and their messages: cyrus with group mail and its supplementary
// groups when the agent is root (setpriv --init-groups, cyrus/install.ts), otherwise the agent's own user.
import { readFile } from 'node:fs/promises';
import { cyrusOwner } from '../slot/files.js';
import type { CyrusUser } from './access.js';

/** name → id tables of /etc/passwd and /etc/group (the third field), read once per call. */
async function idNames(file: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const text = await readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':');
    if (name && id !== undefined && /^\d+$/.test(id) && !out.has(Number(id))) out.set(Number(id), name);
  }
  return out;
}

let cached: CyrusUser | undefined;

export async function cyrusUser(): Promise<CyrusUser> {
  if (cached) return cached;
  const [users, groups] = await Promise.all([idNames('/etc/passwd'), idNames('/etc/group')]);
  const cyrus = await cyrusOwner();
  const ids = cyrus ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, groups: process.getgroups?.() ?? [] };
  cached = {
    ...ids,
    label: cyrus ? 'the cyrus user' : 'the user Cyrus runs as (the agent is not root)',
    userName: (uid) => users.get(uid) ?? String(uid),
    groupName: (gid) => groups.get(gid) ?? String(gid),
  };
  return cached;
}
