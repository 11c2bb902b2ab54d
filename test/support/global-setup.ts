// Runs once around the whole suite: slot-syslogd is started on demand by the first agent and shared by all;
// stop it at the end (by the PID it wrote) if this run started it.
import { existsSync, readFileSync } from 'node:fs';

const PID_FILE = '/run/slotctl/syslog/slot-syslogd.pid';

function runningPid(): number | undefined {
  if (!existsSync(PID_FILE)) return undefined;
  const pid = Number(readFileSync(PID_FILE, 'utf8').trim());
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

export default function setup(): () => void {
  const before = runningPid();
  return () => {
    const pid = runningPid();
    if (pid && pid !== before) process.kill(pid, 'SIGTERM');
  };
}
