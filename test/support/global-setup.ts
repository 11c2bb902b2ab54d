// Runs once around the whole suite: slot-syslogd is started on demand by the first agent and shared by all;
// stop it at the end (by the PID it wrote) if this run started it.
import { stopSyslogdStartedAfterNow } from '../../tools/syslogd.js';

const ONCE = Symbol.for('slotctl.global-setup');

export default function setup(): () => void {
  // vitest calls a global setup for the root config and again for the projects that inherit it: one is enough
  const g = globalThis as { [ONCE]?: boolean };
  if (g[ONCE]) return () => undefined;
  g[ONCE] = true;
  return stopSyslogdStartedAfterNow();
}
