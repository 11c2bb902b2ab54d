// Pure: how every operation's rule table is read — the first row leaving the operation's current step whose
// condition holds fires; its detail (the condition's sentence) goes into the event. And what every runner is given.
import type { Logger } from '@slotctl/shared';
import type { OperationRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
export interface TableRule<V> {
  from: string;
  when: (v: V) => string | undefined;
}

export function firstMatching<V extends { op: { step: string } }, R extends TableRule<V>>(rules: readonly R[], v: V): { rule: R; detail: string } | undefined {
  for (const rule of rules) {
    if (rule.from !== v.op.step) continue;
    const detail = rule.when(v);
    if (detail !== undefined) return { rule, detail };
  }
  return undefined;
}

/** What every operation runner is given by the orchestrator. */
export interface RunnerDeps {
  storage: Storage;
  /** Re-sends desired state to these machines. */
  push: (machines: Iterable<string>) => void;
  connected: () => ReadonlySet<string>;
  log: Logger;
  /** Records the fired rule (operation row + event) and runs its action; false when another evaluation was first. */
  record: (op: OperationRow, fired: { to: string; state: OperationRow['state']; rule: string; reason: string; error?: string; epoch: number }, crashName: string, act: () => void) => boolean;
}
