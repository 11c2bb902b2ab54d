// confirm: not asked for by the coordinator but implied by the role: a master serving at an epoch not yet confirmed
// writes a marker line into its sync log and waits until the rolling sync_client has consumed that file — proof that
// replication flows to the replica it has now. Its id is the epoch; its answer travels as sync_confirmed_epoch. Not
// confirmed (the marker not consumed in time, the role changed): nothing recorded, tried again with the next state.
import { readdir } from 'node:fs/promises';
import { writeSyncMarker } from '../cyrus/mailboxes.js';
import { currentLogIdentity, logIdentityPresent } from '../sync/backlog-reader.js';
import { isSyncLogName } from '../sync/backlog.js';
import type { RequestHandler } from './handler.js';

const CONFIRM_TIMEOUT_MS = 300_000;

export const confirm: RequestHandler<{ op: string; epoch: number }> = {
  name: 'confirm',
  waits: false,
  requested: (d) => (d.role === 'MASTER' ? `epoch ${d.epoch}` : undefined),
  mayRun: (s) => Boolean(s.layout) && s.lifecycle === 'serving',
  async run({ s, d, id, log }) {
    const epoch = d.epoch;
    const layout = s.layout!;
    const still = () => s.desired?.epoch === epoch && s.lifecycle === 'serving';
    try {
      await writeSyncMarker(layout.imapdConf);
      // If sync_client renamed `log` already, wait for the directory to empty instead.
      const marker = await currentLogIdentity(layout.syncDir);
      const consumed = async () => (marker ? !(await logIdentityPresent(layout.syncDir, marker)) : (await readdir(layout.syncDir)).every((f) => !isSyncLogName(f)));
      const deadline = performance.now() + CONFIRM_TIMEOUT_MS;
      while (performance.now() < deadline && still()) {
        if (await consumed()) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (still() && performance.now() < deadline) {
        log.info('replication confirmed: a marker change reached the replica');
        return { op: id, epoch };
      }
      log.warn('replication not confirmed: the marker was not consumed');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not write a replication marker');
    }
    return undefined;
  },
};
