// slot-syslogd is shared by every agent of the host and outlives them. Tools that start agents stop it again when
// they were the ones that caused it to start and no agent is left: by the PID it wrote, never by name.
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export const SYSLOGD_PID_FILE = '/run/slotctl/syslog/slot-syslogd.pid';

export function syslogdPid(): number | undefined {
  if (!existsSync(SYSLOGD_PID_FILE)) return undefined;
  const pid = Number(readFileSync(SYSLOGD_PID_FILE, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** True while any slot-agent runs on this host, of this run or another (read from /proc; nothing is signalled). */
function agentsRunning(): boolean {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith('/slot-agent.js'))) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/**
 * Returns a function that stops slot-syslogd if it was not running when this was called and no agent is left.
 * Test runs of several engineers overlap on one host: stopping it under another run's agents lost their Cyrus lines.
 */
export function stopSyslogdStartedAfterNow(): () => void {
  const before = syslogdPid();
  return () => {
    const pid = syslogdPid();
    if (pid && pid !== before && !agentsRunning()) process.kill(pid, 'SIGTERM');
  };
}
