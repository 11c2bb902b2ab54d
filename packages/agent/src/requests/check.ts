// check: a summary of the mailboxes the coordinator names (or of every mailbox: "*"), from their index headers — a
// read, safe while the slot runs. Kept in memory: after an agent restart a check still asked for runs again.
import { summarizeMailboxes, type MailboxSummary } from '../cyrus/mailboxes.js';
import { requestOf, type RequestHandler } from './handler.js';

export const check: RequestHandler<{ op: string; mailboxes: MailboxSummary[]; error: string }> = {
  name: 'check',
  waits: true,
  requested: (d) => requestOf(d, 'check')?.id,
  mayRun: (s) => Boolean(s.layout),
  async run({ s, d, id, log }) {
    const names = requestOf(d, 'check')!.check.mailboxes;
    try {
      const mailboxes = await summarizeMailboxes(s.layout!.imapdConf, names.slice(0, 100_000));
      log.info({ mailboxes: mailboxes.length }, 'mailbox check done');
      return { op: id, mailboxes, error: '' };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'mailbox check failed');
      return { op: id, mailboxes: [], error: (err as Error).message };
    }
  },
  asResult: (r) => ({ check: r }),
};
