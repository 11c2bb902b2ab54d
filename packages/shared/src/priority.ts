// Scheduling priority of slotctl's daemons. The agent, its fence and the coordinator keep leases: a heartbeat that
// waits seconds for a CPU behind the mail workload (a host starting 20 Cyrus instances, a busy loop) costs the lease
// and fences masters that were fine — measured: agent event-loop delays of 1–4 s and heartbeat round trips up to
// 4.7 s at nice 0 on a saturated 2-core host. Like corosync, which runs its token protocol at real-time priority,
// they run ahead of the workload (nice -10 by default); the Cyrus processes they start run at nice 0.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { ConfigError } from './errors.js';
import type { Logger } from './log.js';

export const DAEMON_NICE = -10;
/** Cyrus programs (cyrmaster and its services, sync_client, cyr_expire…) run at the host's normal priority. */
export const WORKLOAD_NICE = 0;

/** A --nice value: a whole number from -20 to 19. */
export function parseNice(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < -20 || n > 19) throw new ConfigError(`"${value}" is not a nice value (a whole number from -20 to 19)`);
  return n;
}

/**
 * Sets the nice value of every thread of this process, and of its scheduling group; without the privilege to raise
 * it, says so and goes on at the current one.
 * - On Linux a nice value belongs to a thread: setting the process's alone left V8's helper threads (GC, compilation;
 *   started before main runs) at 0, behind the workload, and a main thread waiting on them in a GC waited with them.
 *   Threads started later inherit the value from the thread that starts them.
 * - With autogroups (Debian's default: kernel.sched_autogroup_enabled=1) a nice value only ranks threads within their
 *   session's group, and the groups share the CPU equally: every Cyrus slot runs in a session of its own, so a
 *   daemon at nice -10 got no more than one slot's share. The group's own nice value (/proc/self/autogroup) ranks it
 *   against the others; it is set only when this process leads its session (as a systemd service does), since the
 *   group would otherwise be its caller's — a shell, a test runner — and would lift them all. (Autogroups apply only
 *   in the root CPU cgroup: with systemd's cpu controller on, the unit's CPUWeight= is what ranks it.)
 */
export function setOwnNice(nice: number, log: Logger): void {
  const before = getPriority();
  // a thread that has ended since the listing has no nice value to read, and none to set
  const threads = ownThreads().filter((tid) => {
    const current = threadNice(tid);
    return current !== undefined && current !== nice;
  });
  try {
    if (before !== nice || threads.length > 0) {
      setPriority(nice);
      for (const tid of threads) {
        try {
          setPriority(tid, nice);
        } catch (err) {
          // os.setPriority throws a SystemError: the errno's name is in info.code
          if ((err as { info?: { code?: string } }).info?.code !== 'ESRCH') throw err;
        }
      }
      log.info({ nice, before, threads: threads.length }, 'scheduling priority set: leases are kept ahead of the mail workload');
    }
  } catch (err) {
    log.warn({ nice, current: before, err: (err as Error).message }, 'could not set the scheduling priority (needs root or CAP_SYS_NICE): on a saturated host leases may lapse');
    return;
  }
  const group = autogroup();
  if (!group || group.nice === nice) return;
  if (!sessionLeader()) {
    log.warn({ nice, autogroup: group.name }, 'this process shares its scheduling group (autogroup) with the session that started it, so its nice value does not rank it above the Cyrus slots; run it as a service (systemd gives each one a session) or under setsid');
    return;
  }
  try {
    writeAutogroupNice(nice);
    log.info({ nice, before: group.nice, autogroup: group.name }, "scheduling group's priority set: ahead of the Cyrus slots, each in a group of its own");
  } catch (err) {
    log.warn({ nice, autogroup: group.name, err: (err as Error).message }, "could not set the scheduling group's priority (needs CAP_SYS_NICE; the kernel also refuses more than one change in 100 ms): its threads are at the nice value, the group is not");
  }
}

/** Sets this process's scheduling group's nice value (it must lead its session for the group to be its own). */
function writeAutogroupNice(nice: number): void {
  // r+: only ever the kernel's file, never one created or truncated in its place
  writeFileSync('/proc/self/autogroup', `${nice}\n`, { flag: 'r+' });
}

/**
 * For a daemon's bin script, before its modules load — a second or more of CPU on a busy host, which a restarted
 * daemon must spend ahead of the workload to be back within its lease: the nice value of `--nice` in `argv` (default
 * DAEMON_NICE) for the main thread and, when the process leads its session (a service), for its scheduling group.
 * With the thread's value alone, module loading still ran at the group's 0: 3.0 s from kill to first line beside two
 * busy loops, and the fence fired 0.3 s before the new agent held the lease (test/starvation.test.ts, 2026-12-03).
 * Silent: setOwnNice does it again once logging runs, checked, and says what it could not.
 */
export function takePriorityEarly(argv: readonly string[]): void {
  const at = argv.findIndex((a) => a === '--nice' || a.startsWith('--nice='));
  let nice: number;
  try {
    nice = at < 0 ? DAEMON_NICE : parseNice((argv[at]!.includes('=') ? argv[at]!.split('=')[1] : argv[at + 1]) ?? '');
  } catch {
    return; // main.js refuses it with a clear error
  }
  try {
    setPriority(nice);
  } catch {
    // not allowed: reported by setOwnNice
  }
  try {
    if (sessionLeader()) writeAutogroupNice(nice);
  } catch {
    // no autogroups, or not allowed: reported by setOwnNice
  }
}

/**
 * This process's autogroup and its nice value, when the kernel schedules by autogroup; undefined otherwise — also in
 * the session of PID 1 (a container's processes, some CI runners), which the kernel keeps in the root group: there
 * /proc/self/autogroup is empty and a thread's own nice value ranks it against every group.
 */
export function autogroup(): { name: string; nice: number } | undefined {
  try {
    if (readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() !== '1') return undefined;
    const m = /^(\S+) nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'));
    return m ? { name: m[1]!, nice: Number(m[2]) } : undefined;
  } catch {
    return undefined;
  }
}

/** True when this process leads its session (its own autogroup): field 6 of /proc/self/stat. */
export function sessionLeader(): boolean {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]) === process.pid;
  } catch {
    return false;
  }
}

/** The IDs of this process's threads (Linux: /proc/self/task); none elsewhere. */
export function ownThreads(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number).filter((tid) => Number.isInteger(tid) && tid > 0);
  } catch {
    return [];
  }
}

/** A thread's nice value (field 19 of /proc/self/task/TID/stat), undefined if it has ended. */
export function threadNice(tid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  } catch {
    return undefined;
  }
}

/** The `nice -n` adjustment that runs a child at `target` from this process's own nice value (0: none needed). */
export function niceAdjustment(target = WORKLOAD_NICE): number {
  return target - getPriority();
}
