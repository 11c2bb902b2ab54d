// Runs once around the whole suite: slot-syslogd is started on demand by the first agent and shared by all;
// stop it at the end (by the PID it wrote) if this run started it.
import { stopSyslogdStartedAfterNow } from '../../tools/syslogd.js';

export default function setup(): () => void {
  return stopSyslogdStartedAfterNow();
}
