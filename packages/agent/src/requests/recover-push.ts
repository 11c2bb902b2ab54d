// recover-push: a stopped, returning old master pushes the mailboxes its quarantined sync logs name to the new
// master, then verifies every message arrived (asking the new master's agent for GUIDs). Complete, its quarantine is
// marked recovered. Kept in memory: a push is safe to run again.
import type { RecoverReport } from '@slotctl/shared';
import { pushMailboxes } from '../recover/push.js';
import { markRecovered } from '../sync/quarantine.js';
import { requestOf, SLOT_DOWN, type RequestHandler } from './handler.js';

export const recoverPush: RequestHandler<RecoverReport & { op: string }> = {
  name: 'recover-push',
  waits: true,
  requested: (d) => {
    const r = requestOf(d, 'recoverPush');
    return d.stopped && r?.recoverPush.target ? r.id : undefined;
  },
  mayRun: (s) => Boolean(s.layout) && SLOT_DOWN.includes(s.lifecycle),
  async run({ s, d, id, log, services }) {
    const { target, targetSlot, targetMachine, mailboxes } = requestOf(d, 'recoverPush')!.recoverPush;
    const layout = s.layout!;
    log.info({ target, mailboxes: mailboxes.length }, 'recovery: pushing quarantined mailboxes to the new master');
    let report: RecoverReport & { op: string };
    try {
      report = {
        ...(await pushMailboxes({
          op: id,
          layout,
          targetIp: target,
          mailboxes,
          ports: services.runtime.ports,
          auth: services.runtime.auth,
          slotIp: d.slotIp,
          vip: services.runtime.vip,
          targetGuids: (names) => services.targetGuids(targetMachine, targetSlot, names),
          targetUserSync: (users) => services.targetUserSync(targetMachine, targetSlot, users),
          log,
        })),
        op: id,
      };
    } catch (err) {
      report = { op: id, done: true, mailboxes: [], error: (err as Error).message };
    }
    const complete = !report.error && (report.mailboxes ?? []).every((m) => (m.result === 'pushed' || m.result === 'copied' || m.result === 'nothing') && m.missing === 0);
    if (complete) {
      await markRecovered(layout, id);
      await services.quarantineChanged(s, mailboxes);
    }
    log.info({ complete, mailboxes: report.mailboxes?.length, error: report.error }, 'recovery push finished');
    return report;
  },
  asResult: (r) => ({ recoverPush: r }),
};
