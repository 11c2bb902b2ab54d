// A serving master told to replicate elsewhere without a restart (a replica being moved: the second sync log channel
// added, then the switch to the new replica). Only sync settings and the DAEMON section change, so cyrmaster takes
// the new cyrus.conf with SIGHUP: it starts a daemon the file adds and does not start again one it dropped. A rolling
// sync_client reads imapd.conf once, at its start: each one running after the write is ended once cyrmaster has
// read the file, and cyrmaster starts again those it still lists, now with the new settings. Measured on Cyrus 3.6.1
// (standalone, three slots): channel added by SIGHUP → both replicas received every later delivery; the switch
// (sync_host changed, channel dropped, sync_clients ended 0.3 s after the SIGHUP) → later deliveries reached only the
// new replica and the dropped channel's client was not started again. Services keep running; IMAP sessions begun
// before the second channel are ended when it is added (below); the operation copies every user once more after the
// switch (catch-up).
import { setTimeout as sleep } from 'node:timers/promises';
import { childProcesses, signalStillRunning } from './process.js';

/** Time given to cyrmaster to read cyrus.conf again before the old sync_clients are ended. */
export const RELOAD_SETTLE_MS = 500;

/**
 * Writes the config (`write`), signals cyrmaster `pid`, ends its sync_clients of the old settings. `endSessions`
 * (the second channel added): IMAP and POP sessions begun before it are ended too — they would log their changes to
 * the first channel only, for as long as their clients stay (an idle IMAP client stays for days); their clients
 * reconnect and log to both. A delivery in progress is left to finish (a later change of the same mailbox carries it,
 * the catch-up copy the rest). Returns how many sync_clients and sessions were ended.
 */
export async function reloadReplication(input: { pid: number; write: () => Promise<void>; settleMs?: number; endSessions?: boolean }): Promise<{ clients: number; sessions: number }> {
  await input.write();
  // listed after the write: one started before it runs the old settings, one started after it is only restarted
  const clients = childProcesses(input.pid, ['sync_client']);
  const sessions = input.endSessions ? childProcesses(input.pid, ['imapd', 'pop3d']) : [];
  process.kill(input.pid, 'SIGHUP');
  // ended before cyrmaster has read the file, a client of a dropped channel would be started again from the old list
  await sleep(input.settleMs ?? RELOAD_SETTLE_MS);
  return { clients: signalStillRunning(clients, 'SIGTERM'), sessions: signalStillRunning(sessions, 'SIGTERM') };
}
