// The checks before a slot's cyrmaster starts, in one place. Each answers with sentences that name the path or the
// port, what is wrong and what to do; a slot with any answer is failed with them instead of started (no crash loop
// whose only words are an exit code), and checked again at its next desired state and every few seconds.
// The agent-wide check (Debian's own Cyrus) runs once, at agent start, and only warns.
import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { Logger } from '@slotctl/shared';
import type { SlotLayout } from '../slot/layout.js';
import { accessProblem, type CyrusUser, type Need } from './access.js';
import { debianCyrusWarnings, findDebianCyrus } from './debian-cyrus.js';
import { cyrusUser } from './identity.js';
import { listenAddresses, portProblems } from './ports.js';

export interface PreflightInput {
  layout: SlotLayout;
  /** The cyrus.conf the slot starts with: its listen= addresses are what cyrmaster binds. */
  cyrusConf: string;
  /** The slot's own cyrmaster, if one runs (it is taken over, so its listeners are no conflict). */
  ownMaster: number | undefined;
}

export interface PreflightCheck {
  name: string;
  what: string;
  run: (input: PreflightInput, who: CyrusUser) => Promise<string[]>;
}

/** What Cyrus needs of each of the slot's paths (what its imapd.conf names, and the configs themselves). */
export function slotPaths(layout: SlotLayout): { path: string; need: Need; role: string }[] {
  return [
    { path: layout.imapdConf, need: 'read', role: 'imapd.conf' },
    { path: layout.cyrusConf, need: 'read', role: 'cyrus.conf' },
    { path: layout.confDir, need: 'write', role: 'configdirectory' },
    { path: layout.syncDir, need: 'write', role: 'sync directory' },
    { path: layout.metaPartition, need: 'write', role: 'meta partition' },
    { path: layout.dataPartition, need: 'write', role: 'data partition' },
  ];
}

export const PREFLIGHT_CHECKS: readonly PreflightCheck[] = [
  {
    name: 'cyrus-access',
    what: "the user Cyrus runs as can traverse to and read the slot's configs, and write its partitions and sync directory",
    run: async ({ layout }, who) => {
      // one directory on the way to several of them is one problem, naming what it keeps Cyrus from
      const problems = new Map<string, string[]>();
      // the six paths share most of their ancestors: each is looked at once per check
      const seen = new Map<string, Promise<Stats>>();
      const stat = (path: string) => seen.get(path) ?? seen.set(path, lstat(path)).get(path)!;
      for (const { path, need, role } of slotPaths(layout)) {
        const problem = await accessProblem(path, need, who, stat);
        if (problem) problems.set(problem, [...(problems.get(problem) ?? []), role]);
      }
      return [...problems].map(([problem, roles]) => `${problem} (Cyrus needs it for the slot's ${roles.join(', ')})`);
    },
  },
  {
    name: 'ports-free',
    what: 'nothing else listens on the addresses and ports the slot will listen on (IMAP, LMTP, sync)',
    run: ({ cyrusConf, ownMaster }) => portProblems(listenAddresses(cyrusConf), ownMaster),
  },
];

/** Every check's problems for one slot (empty: it may start). */
export async function preflight(input: PreflightInput): Promise<string[]> {
  const who = await cyrusUser();
  const out: string[] = [];
  for (const check of PREFLIGHT_CHECKS) out.push(...(await check.run(input, who)));
  return out;
}

/** At agent start: Debian's own Cyrus running is worth a warning (it is an error only for a slot whose ports it holds). */
export async function preflightAtStart(log: Logger): Promise<string[]> {
  const warnings = debianCyrusWarnings(await findDebianCyrus());
  for (const w of warnings) log.warn({ check: 'debian-cyrus' }, w);
  return warnings;
}
