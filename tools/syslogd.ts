// slot-syslogd is shared by every agent of the host and outlives them. Tools that start agents stop it again when
// they were the ones that caused it to start: by the PID it wrote, never by name.
import { existsSync, readFileSync } from 'node:fs';

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

/** Returns a function that stops slot-syslogd if it was not running when this was called. */
export function stopSyslogdStartedAfterNow(): () => void {
  const before = syslogdPid();
  return () => {
    const pid = syslogdPid();
    if (pid && pid !== before) process.kill(pid, 'SIGTERM');
  };
}
