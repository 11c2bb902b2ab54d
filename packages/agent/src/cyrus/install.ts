import { niceAdjustment } from '@slotctl/shared';
// Where Debian's Cyrus 3.6 lives, and how a slot's processes run as the cyrus user.
export const CYRUS_BIN = process.env.SLOTCTL_CYRUS_BIN ?? '/usr/lib/cyrus/bin';
export const CYRUS_USER = 'cyrus';
export const CYRUS_GROUP = 'mail';

export function cyrusBinary(name: 'master' | 'sync_client' | 'cyr_expire' | 'ctl_cyrusdb' | 'mbexamine' | 'cyr_synclog' | 'unexpunge' | 'mbpath'): string {
  return `${CYRUS_BIN}/${name}`;
}

/**
 * Runs a Cyrus program as cyrus:mail with its supplementary groups (setpriv, as the measured recipe does), allowed
 * to bind privileged ports (143, 24) without being root.
 */
export function asCyrus(binary: string, args: readonly string[], options: { diesWithAgent?: boolean } = {}): { file: string; args: string[] } {
  const run = process.getuid?.() !== 0 ? { file: binary, args: [...args] } : setpriv(binary, args, options.diesWithAgent ?? false);
  // the agent runs ahead of the mail workload (see @slotctl/shared priority); Cyrus runs at the normal priority
  const adjust = niceAdjustment();
  return adjust === 0 ? run : { file: 'nice', args: ['-n', String(adjust), run.file, ...run.args] };
}

/**
 * asCyrus for a one-shot tool the agent waits for (sync_client replays and seeds, cyr_expire, mbexamine,
 * cyr_synclog): in a session of its own, so in a scheduling group (autogroup) of its own at the workload's priority
 * rather than in the agent's group, which is set ahead of the slots (see @slotctl/shared priority). setsid forks only
 * for a process-group leader; a child spawned without `detached` is none, so the tool keeps the PID execa knows.
 */
export function asCyrusTool(binary: string, args: readonly string[]): { file: string; args: string[] } {
  // killed with the agent (even by SIGKILL: a watchdog kill, a forced stop): an orphaned replay would race the one
  // the next agent starts for the same sync log. cyrmaster (asCyrus) is the opposite: it outlives agent restarts.
  const run = asCyrus(binary, args, { diesWithAgent: true });
  return { file: 'setsid', args: [run.file, ...run.args] };
}

function setpriv(binary: string, args: readonly string[], diesWithAgent: boolean): { file: string; args: string[] } {
  return {
    file: 'setpriv',
    args: [
      `--reuid=${CYRUS_USER}`,
      `--regid=${CYRUS_GROUP}`,
      '--init-groups',
      '--inh-caps=+net_bind_service',
      '--ambient-caps=+net_bind_service',
      // the parent-death signal, set after the change of user (measured: it holds through setpriv's exec); setsid
      // and nice exec without forking, so the parent is the agent
      ...(diesWithAgent ? ['--pdeathsig=KILL'] : []),
      binary,
      ...args,
    ],
  };
}
