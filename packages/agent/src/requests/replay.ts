// replay: a stopped slot's leftover sync logs replayed to its replica, then a summary of every mailbox they named
// (the coordinator compares it with the replica's). Its answer is persisted before it is reported (replays.json):
// a resent desired state gets the same answer after an agent restart, not a second replay.
import type { ReplayReport } from '@slotctl/shared';
import { summarizeMailboxes, type MailboxSummary } from '../cyrus/mailboxes.js';
import { replaySyncLogs } from '../sync/replay.js';
import { requestOf, SLOT_DOWN, type RequestHandler } from './handler.js';

export const replay: RequestHandler<Required<ReplayReport> & { op: string }> = {
  name: 'replay',
  waits: true,
  requested: (d) => (d.stopped ? requestOf(d, 'replay')?.id : undefined),
  mayRun: (s) => Boolean(s.layout) && SLOT_DOWN.includes(s.lifecycle),
  async run({ s, d, id, log, services }) {
    const layout = s.layout!;
    // changes the sync log missed are logged first (a sync of every mailbox), or the replay cannot be complete
    const unlogged = !(await services.logUnlogged(s));
    const result = unlogged
      ? { ok: false, replayed: [], failedFile: '', error: `${s.name} made changes its sync log could not record (its meta partition full or failing) and a sync of every mailbox could not be logged yet: free space on ${layout.metaPath}`, mailboxes: [], ms: 0 }
      : d.peerIp
      ? await replaySyncLogs(layout, { ip: d.peerIp, port: services.runtime.ports.sync }, log)
      : { ok: false, replayed: [], failedFile: '', error: 'the slot has no replica to replay to', mailboxes: [], ms: 0 };
    let mailboxes: MailboxSummary[] = [];
    let error = result.error ?? '';
    if (result.ok && result.mailboxes.length) {
      try {
        mailboxes = await summarizeMailboxes(layout.imapdConf, result.mailboxes);
      } catch (err) {
        error = `replayed, but the mailboxes could not be summarized: ${(err as Error).message}`;
      }
    }
    log.info({ ok: result.ok, replayed: result.replayed, failedFile: result.failedFile, error: result.error }, 'replay finished');
    await services.refreshBacklog(s.name);
    return { op: id, ok: result.ok && !error, replayed: result.replayed, failedFile: result.failedFile ?? '', error, finishedAt: new Date().toISOString(), ms: Math.round(result.ms), mailboxes };
  },
  asResult: (r) => ({ replay: r }),
};
