// What a namespace cluster leaves on the host and how it is removed: the lock that lets one cluster run at a time, the
// processes named in DIR/pids, the cyrmasters under DIR and the namespaces of a prefix (`destroy()`, the next
// cluster of the same prefix, and `pnpm test:cleanup` after a killed run).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execaSync } from 'execa';
import { killSlotsUnder } from '../../tools/local-cluster.js';

export const NETNS_PREFIX = 'sltt';
export const CLUSTER_LOCK = join(tmpdir(), 'slotctl-netns-cluster.lock');

/** Removes the cluster lock when the process that holds it is gone. */
export function removeStaleLock(): void {
  let holder = 0; // a holder that has just made the directory may not have written its name yet
  try {
    holder = Number(readFileSync(join(CLUSTER_LOCK, 'holder'), 'utf8').split(' ')[0]) || 0;
  } catch {
    return;
  }
  if (holder && !pidNames(holder, '')) rmSync(CLUSTER_LOCK, { recursive: true, force: true });
}

/**
 * Whether the live process `pid` names `needle` (the test directory) in its command line or its environment — a
 * reused PID does not. The environment too: an etcd-backed coordinator's command line names no directory of the test
 * (no --data-dir), only its crash file in SLOTCTL_TEST_CRASH_FILE does; three of them outlived a killed run.
 */
export function pidNames(pid: number, needle: string): boolean {
  for (const what of ['cmdline', 'environ']) {
    try {
      if (readFileSync(`/proc/${pid}/${what}`, 'utf8').includes(needle)) return true;
    } catch {
      // gone, or not ours to read
    }
  }
  return false;
}

/**
 * Removes what a harness left: processes named in DIR/pids (checked against their command line, so a reused PID is
 * never killed), cyrmasters under DIR, and every namespace starting with `prefix`.
 */
export function cleanupNetns(dir: string | undefined, prefix: string): { processes: number; namespaces: string[] } {
  let processes = 0;
  if (!dir) removeStaleLock(); // a run killed while holding it
  if (dir) {
    const pidDir = join(dir, 'pids');
    let files: string[] = [];
    try {
      files = readdirSync(pidDir);
    } catch {
      // nothing started
    }
    for (const file of files) {
      const pid = Number(readFileSync(join(pidDir, file), 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1 && pidNames(pid, dir)) {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, 'SIGKILL');
        processes++;
      }
      rmSync(join(pidDir, file), { force: true });
    }
    processes += killSlotsUnder(dir).length;
  }
  const namespaces = ipSync(['netns', 'list'])
    .split('\n')
    .map((line) => line.split(' ')[0]!)
    .filter((ns) => ns.startsWith(prefix));
  for (const ns of namespaces) ipSync(['netns', 'del', ns]);
  return { processes, namespaces };
}

function ipSync(args: string[]): string {
  return execaSync('ip', args, { reject: false }).stdout;
}

/**
 * Mount points at or under `dir`, deepest first (the soak's tmpfs partitions), from /proc/self/mountinfo, whose paths
 * escape spaces and the like as octal.
 */
export function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => !!p)
    .map(unescape)
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts every filesystem mounted at or under `dir`, lazily: a process still holding one open must not keep the
 * directory from being removed.
 */
export function unmountUnder(dir: string): string[] {
  const points = mountsUnder(dir);
  for (const p of points) execaSync('umount', ['-l', p], { reject: false });
  return points;
}
