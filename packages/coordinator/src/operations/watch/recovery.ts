// Returning old masters, level-triggered (every evaluation): what happens to each open at-risk record is
// RECOVERY_WATCH_RULES. An old master that came back and quarantined nothing gets its record closed ("nothing lost")
// and starts as replica; one that quarantined sync logs gets the mailboxes they name written into its record and
// waits for `slotctl store recover` (kinds/recovery.ts).
import { withContext } from '@slotctl/shared';
import type { AtRiskRow, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import type { KindContext } from '../framework/kind.js';
import { firstMatch, type CheckRule } from '../framework/rule.js';

/** One open at-risk record and the slot it is about. */
export interface ReturnView {
  record: AtRiskRow;
  /** An operation runs on the record's store. */
  busy: boolean;
  slot: SlotRow | undefined;
  store: StoreRow | undefined;
}

export type RecoveryWatchAction = 'none' | 'close-nothing-lost' | 'name-mailboxes';

const sameList = (a: readonly string[], b: readonly string[]) => JSON.stringify(a) === JSON.stringify(b);

export const RECOVERY_WATCH_RULES: readonly CheckRule<ReturnView, RecoveryWatchAction>[] = [
  {
    name: 'recovering',
    doc: 'the record is being recovered, or an operation runs on its store: wait',
    when: (v) => (v.record.state !== 'open' ? `the record is ${v.record.state}` : v.busy ? `an operation runs on ${v.record.store}` : undefined),
    action: 'none',
  },
  {
    name: 'not-back',
    doc: 'the old master has not reported what it quarantined since the record was opened',
    when: (v) => (!v.slot || !v.store || !v.slot.quarantine || v.slot.reportedAt === null || v.slot.reportedAt < v.record.createdAt ? `${v.record.slot} has not reported its quarantine since the record was opened` : undefined),
    action: 'none',
  },
  {
    name: 'not-replica-yet',
    doc: 'it does not yet run as replica at the epoch of the failover',
    when: (v) => (v.slot!.observedRole !== 'REPLICA' || v.slot!.epochApplied < v.record.epoch ? `${v.record.slot} is ${v.slot!.observedRole || 'nothing'} at epoch ${v.slot!.epochApplied}, not replica at ${v.record.epoch}` : undefined),
    action: 'none',
  },
  {
    name: 'nothing-lost',
    doc: 'it quarantined no sync log: the record closes as nothing lost, and the slot starts as replica',
    when: (v) => (v.slot!.quarantine!.files.length === 0 ? `${v.record.slot} returned on ${v.record.machine} with no sync log left: every change it had acknowledged had reached its replica` : undefined),
    action: 'close-nothing-lost',
  },
  {
    name: 'unreplicated',
    doc: 'its quarantined sync logs name mailboxes not yet in the record: they are written into it; the slot stays stopped until slotctl store recover',
    when: (v) => {
      const q = v.slot!.quarantine!;
      return sameList(v.record.mailboxes, q.mailboxes) ? undefined : `${v.record.slot} returned on ${v.record.machine}: ${q.files.length} quarantined sync log(s) name ${q.mailboxes.length} mailbox(es); it stays stopped until slotctl store recover ${v.record.store}`;
    },
    action: 'name-mailboxes',
  },
];

export class RecoveryWatch {
  private readonly actions: Record<RecoveryWatchAction, (v: ReturnView, detail: string) => void> = {
    none: () => undefined,
    'close-nothing-lost': (v, reason) => {
      const { storage } = this.ctx;
      storage.transaction(() => {
        storage.atRisk.update(v.record, { state: 'nothing-lost', mailboxes: [], reason });
        storage.slots.setRecoveryHold(v.record.slot, '');
      });
      this.log(v).info('old master returned with nothing unreplicated: it starts as replica');
      this.ctx.push([v.slot!.machine]);
    },
    'name-mailboxes': (v, reason) => {
      const mailboxes = v.slot!.quarantine!.mailboxes;
      this.ctx.storage.atRisk.update(v.record, { state: 'open', mailboxes, reason });
      this.log(v).warn({ mailboxes: mailboxes.length }, 'old master returned with unreplicated changes: waiting for slotctl store recover');
    },
  };

  constructor(private readonly ctx: KindContext) {}

  /** Old masters that came back: close what needs no recovery, name what does. */
  check(running: readonly OperationRow[]): void {
    const { storage } = this.ctx;
    const busy = new Set(running.map((o) => o.store));
    for (const record of storage.atRisk.listOpen()) {
      const v: ReturnView = { record, busy: busy.has(record.store), slot: storage.slots.get(record.slot), store: storage.stores.get(record.store) };
      const fired = firstMatch(RECOVERY_WATCH_RULES, v);
      if (fired) this.actions[fired.rule.action](v, fired.detail);
    }
  }

  private log(v: ReturnView) {
    return withContext(this.ctx.log, { store: v.record.store, slot: v.record.slot, epoch: v.store!.epoch });
  }
}
