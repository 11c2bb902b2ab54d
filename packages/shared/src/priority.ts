// Scheduling priority of slotctl's daemons. The agent, its fence and the coordinator keep leases: a heartbeat that
// waits seconds for a CPU behind the mail workload (a host starting 20 Cyrus instances, a busy loop) costs the lease
// and fences masters that were fine — measured: agent event-loop delays of 1–4 s and heartbeat round trips up to
// 4.7 s at nice 0 on a saturated 2-core host. Like corosync, which runs its token protocol at real-time priority,
// they run ahead of the workload (nice -10 by default); the Cyrus processes they start run at nice 0.
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

/** Sets this process's nice value; without the privilege to raise it, says so and goes on at the current one. */
export function setOwnNice(nice: number, log: Logger): void {
  const before = getPriority();
  if (before === nice) return;
  try {
    setPriority(nice);
    log.info({ nice, before }, 'scheduling priority set: leases are kept ahead of the mail workload');
  } catch (err) {
    log.warn({ nice, current: before, err: (err as Error).message }, 'could not set the scheduling priority (needs root or CAP_SYS_NICE): on a saturated host leases may lapse');
  }
}

/** The `nice -n` adjustment that runs a child at `target` from this process's own nice value (0: none needed). */
export function niceAdjustment(target = WORKLOAD_NICE): number {
  return target - getPriority();
}
