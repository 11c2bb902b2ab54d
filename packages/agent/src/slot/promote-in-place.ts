// Promotion in place: a serving replica's cyrmaster becomes its store's master without a restart. The master's
// imapd.conf and cyrus.conf are written, the store's service IP is taken, and cyrmaster reads its cyrus.conf again
// (SIGHUP): it closes the sync_server listener, opens IMAP and LMTP on the service IP and starts the rolling
// sync_client. Measured on Cyrus 3.6 (../../../shared/cyrus): LMTP listening ~0.1 s after the signal, where a restart
// (stop, START recovery, spawn, first greeting) took 1–2 s of a failover's 2 s start phase.
//
// What makes it as safe as a restart: every child cyrmaster had before the signal read the replica's imapd.conf (no
// sync_log: changes it made would never replicate; no autocreate). cyrmaster lets idle ones exit on the SIGHUP by
// itself, but a session in progress (an admin's IMAP on the slot IP, an old master's sync_server connection) goes on
// with the replica's settings — measured: a logged-in imapd outlived the SIGHUP until its client left. So each child
// seen after the config was written and before the signal is stopped once the new master serves; a child started
// after the write reads the master's imapd.conf. Only the services are stopped: a checkpoint (ctl_cyrusdb -c) in
// progress is left to finish, the replica's settings change nothing it does.
import { childProcesses, signalStillRunning, type ProcessRef } from './process.js';

/** The service programs whose sessions carry the replica's settings. */
const SERVICES = ['imapd', 'sync_server', 'lmtpd', 'pop3d'];

export class PromotionError extends Error {
  override name = 'PromotionError';
}

/**
 * Writes the master's config (`write`), takes the store's address (`take`, false: not taken) and signals cyrmaster
 * `pid` to read it. Returns the children that run with the replica's settings (see `endReplicaSessions`).
 */
export async function reloadAsMaster(input: { pid: number; serviceIp: string; write: () => Promise<void>; take: () => Promise<boolean> }): Promise<ProcessRef[]> {
  await input.write();
  // after the write: a child started from now on reads the master's imapd.conf
  const replicaChildren = childProcesses(input.pid, SERVICES);
  if (!(await input.take())) throw new PromotionError(`its store's address ${input.serviceIp} was not taken`);
  process.kill(input.pid, 'SIGHUP');
  return replicaChildren;
}

/** Stops (SIGTERM) what is left of the children that read the replica's imapd.conf; how many there were. */
export function endReplicaSessions(replicaChildren: readonly ProcessRef[]): number {
  return signalStillRunning(replicaChildren, 'SIGTERM');
}
