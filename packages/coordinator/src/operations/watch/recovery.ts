// Returning old masters, level-triggered (every evaluation): an old master that came back and quarantined nothing
// gets its at-risk record closed ("nothing lost") and starts as replica; one that quarantined sync logs gets the
// mailboxes they name written into its record and waits for `slotctl store recover` (kinds/recovery.ts).
import { withContext } from '@slotctl/shared';
import type { OperationRow } from '../../db/rows.js';
import type { KindContext } from '../framework/kind.js';

export class RecoveryWatch {
  constructor(private readonly ctx: KindContext) {}

  /** Old masters that came back: close what needs no recovery, name what does. */
  check(running: readonly OperationRow[]): void {
    const { storage } = this.ctx;
    const busy = new Set(running.map((o) => o.store));
    for (const record of storage.atRisk.listOpen()) {
      if (record.state !== 'open' || busy.has(record.store)) continue;
      const slot = storage.slots.get(record.slot);
      const store = storage.stores.get(record.store);
      if (!slot || !store || !slot.quarantine || slot.reportedAt === null || slot.reportedAt < record.createdAt) continue;
      if (slot.observedRole !== 'REPLICA' || slot.epochApplied < record.epoch) continue;
      const log = withContext(this.ctx.log, { store: record.store, slot: record.slot, epoch: store.epoch });
      if (slot.quarantine.files.length === 0) {
        storage.transaction(() => {
          storage.atRisk.update(record, { state: 'nothing-lost', mailboxes: [], reason: `${record.slot} returned on ${record.machine} with no sync log left: every change it had acknowledged had reached its replica` });
          storage.slots.setRecoveryHold(record.slot, '');
        });
        log.info('old master returned with nothing unreplicated: it starts as replica');
        this.ctx.push([slot.machine]);
      } else if (JSON.stringify(record.mailboxes) !== JSON.stringify(slot.quarantine.mailboxes)) {
        storage.atRisk.update(record, {
          state: 'open',
          mailboxes: slot.quarantine.mailboxes,
          reason: `${record.slot} returned on ${record.machine}: ${slot.quarantine.files.length} quarantined sync log(s) name ${slot.quarantine.mailboxes.length} mailbox(es); it stays stopped until slotctl store recover ${record.store}`,
        });
        log.warn({ mailboxes: slot.quarantine.mailboxes.length }, 'old master returned with unreplicated changes: waiting for slotctl store recover');
      }
    }
  }
}
