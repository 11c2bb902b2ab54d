// Debian's own Cyrus (cyrus-imapd.service): installing the package starts a master on /etc/imapd.conf and
// /etc/cyrus.conf that listens on the standard ports of every address and serves mail nobody replicates. Found at
// agent start (a warning); a slot whose ports it holds fails its port check with the same fix.
import { readdir, readFile } from 'node:fs/promises';
import { pidAlive } from '../slot/process.js';

export const DEBIAN_CYRUS_FIX = 'systemctl mask --now cyrus-imapd';
/** Where Debian's master writes its PID (Cyrus's default master_pid_file). */
export const DEBIAN_PID_FILE = '/run/cyrus-master.pid';

const isMaster = (argv0: string | undefined) => /(^|\/)(master|cyrmaster)$/.test(argv0 ?? '');
const option = (args: readonly string[], flag: string) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};

/** Pure: a Cyrus master on the system's config (no -C means /etc/imapd.conf; -M /etc/cyrus.conf), not a slot's. */
export function isDebianCyrusMaster(args: readonly string[]): boolean {
  if (!isMaster(args[0])) return false;
  const conf = option(args, '-C');
  return conf === undefined || conf === '/etc/imapd.conf' || option(args, '-M') === '/etc/cyrus.conf';
}

export interface FoundProcess {
  pid: number;
  command: string;
}

/** Running masters of Debian's Cyrus: its PID file's live master, and any master process on the system's config. */
export async function findDebianCyrus(pidFile = DEBIAN_PID_FILE): Promise<FoundProcess[]> {
  const found = new Map<number, FoundProcess>();
  const argsOf = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
  const fromFile = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (Number.isInteger(fromFile) && fromFile > 1 && pidAlive(fromFile)) {
    const args = await argsOf(fromFile);
    // a PID file left behind may name a PID reused by anything: only a Cyrus master counts
    if (isMaster(args[0])) found.set(fromFile, { pid: fromFile, command: args.join(' ') });
  }
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const args = await argsOf(Number(entry));
    if (isDebianCyrusMaster(args)) found.set(Number(entry), { pid: Number(entry), command: args.join(' ') });
  }
  return [...found.values()];
}

/** The warning for each one found (empty: none runs). */
export function debianCyrusWarnings(found: readonly FoundProcess[]): string[] {
  return found.map(
    (p) => `Debian's own Cyrus is running (pid ${p.pid}: ${p.command.slice(0, 200)}): it listens on the standard ports of every address and may take a slot's; stop it for good with ${DEBIAN_CYRUS_FIX}`,
  );
}
