// Returning old masters, on the coordinator. Level-triggered (every evaluation): an old master that came back and
// quarantined nothing gets its at-risk record closed ("nothing lost") and starts as replica; one that quarantined
// sync logs gets the mailboxes they name written into its record and waits for `slotctl store recover`. A recovery
// is an operation per store with its own rule table (recovery-rules.ts).
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, ValidationError, withContext } from '@slotctl/shared';
import { OperationConflict, type AtRiskRow, type OperationRow } from '../db/rows.js';
import type { RunnerDeps } from './rule-table.js';
import { RECOVERY_RULES, firstRecoveryRule, recoveryComplete, recoveryPlan, recoveryProblems, type RecoveryAction, type RecoveryParams, type RecoveryView } from './recovery-rules.js';

export const RECOVERY_DEFAULTS = { timeoutMs: 600_000 };

export class RecoveryRunner {
  constructor(private readonly deps: RunnerDeps) {}

  /** Old masters that came back: close what needs no recovery, name what does. */
  check(running: readonly OperationRow[]): void {
    const { storage } = this.deps;
    const busy = new Set(running.map((o) => o.store));
    for (const record of storage.atRisk.listOpen()) {
      if (record.state !== 'open' || busy.has(record.store)) continue;
      const slot = storage.slots.get(record.slot);
      const store = storage.stores.get(record.store);
      if (!slot || !store || !slot.quarantine || slot.reportedAt === null || slot.reportedAt < record.createdAt) continue;
      if (slot.observedRole !== 'REPLICA' || slot.epochApplied < record.epoch) continue;
      const log = withContext(this.deps.log, { store: record.store, slot: record.slot, epoch: store.epoch });
      if (slot.quarantine.files.length === 0) {
        storage.transaction(() => {
          storage.atRisk.update(record, { state: 'nothing-lost', mailboxes: [], reason: `${record.slot} returned on ${record.machine} with no sync log left: every change it had acknowledged had reached its replica` });
          storage.slots.setRecoveryHold(record.slot, '');
        });
        log.info('old master returned with nothing unreplicated: it starts as replica');
        this.deps.push([slot.machine]);
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

  private view0(storeName: string): Omit<RecoveryView, 'op' | 'now' | 'params'> {
    const { storage } = this.deps;
    const store = storage.stores.get(storeName);
    if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
    const atRisk = storage.atRisk.list(storeName).find((r) => r.closedAt === null);
    const old = storage.slots.get(atRisk?.slot ?? store.replicaSlot)!;
    const target = storage.slots.get(store.masterSlot)!;
    return { store, atRisk, old, target, oldMachine: storage.machines.get(old.machine)!, targetMachine: storage.machines.get(target.machine)!, connected: this.deps.connected() };
  }

  private paramsOf(v: Omit<RecoveryView, 'op' | 'now' | 'params'>): RecoveryParams {
    return {
      old: v.old.name,
      target: v.target.name,
      oldMachine: v.old.machine,
      targetMachine: v.target.machine,
      atRisk: v.atRisk?.id ?? 0,
      mailboxes: v.old.quarantine?.mailboxes ?? v.atRisk?.mailboxes ?? [],
      timeoutMs: RECOVERY_DEFAULTS.timeoutMs,
    };
  }

  /** `slotctl store recover STORE` / `machine recover M`: preview or start one recovery per store. */
  request(input: { store?: string | undefined; machine?: string | undefined; dryRun: boolean }): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    const { storage } = this.deps;
    if (!input.store === !input.machine) throw new ValidationError('name a store or a machine to recover');
    let stores: string[];
    if (input.store) stores = [input.store];
    else {
      if (!storage.machines.get(input.machine!)) throw new NotFoundError(`machine "${input.machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
      stores = [...new Set(storage.atRisk.listOpen().filter((r) => r.machine === input.machine).map((r) => r.store))];
      if (stores.length === 0) return { plan: [], problems: [`machine ${input.machine} has no open at-risk record: nothing to recover`], operations: [] };
    }
    const plan: string[] = [];
    const problems: string[] = [];
    const operations: OperationRow[] = [];
    for (const name of stores) {
      const open = storage.atRisk.list(name).find((r) => r.closedAt === null);
      if (open && !storage.slots.get(open.slot)) {
        // its machine was retired: the unreplicated changes are on that machine's disks, out of the cluster's reach
        const retired = storage.slots.retired(open.machine).find((r) => r.name === open.slot);
        problems.push(`${name}: the old master ${open.slot} was retired with machine ${open.machine}${retired ? ` (replaced by ${retired.replacedBy})` : ''}: what it had not replicated (slotctl store at-risk ${name}) is only on ${open.machine}'s disks under ${retired?.metaPath ?? 'its meta partition'}/quarantine or its sync directory`);
        continue;
      }
      const v = this.view0(name);
      const params = this.paramsOf(v);
      plan.push(...recoveryPlan(params, name).map((line) => `${name}: ${line}`));
      const why = recoveryProblems(v);
      if (why.length) {
        problems.push(...why.map((p) => `${name}: ${p}`));
        continue;
      }
      if (input.dryRun) continue;
      const id = `rc-${randomUUID().slice(0, 8)}`;
      try {
        storage.operations.create({ id, kind: 'recover', store: name, step: 'preflight', params: { ...params }, epoch: v.store.epoch, reason: `recovery of ${name}: ${params.mailboxes.length} mailbox(es) from ${params.old} (${params.oldMachine}) to ${params.target}` });
        operations.push(storage.operations.get(id)!);
      } catch (err) {
        if (!(err instanceof OperationConflict)) throw err;
        problems.push(`${name}: busy: ${err.message}`);
      }
    }
    if (input.store && problems.length && operations.length === 0 && !input.dryRun && stores.length === 1 && problems[0]!.includes('busy')) {
      throw new ConflictError(problems[0]!, { hint: 'wait for the running operation (slotctl operations list)' });
    }
    return { plan, problems, operations };
  }

  view(op: OperationRow): RecoveryView | undefined {
    const { storage } = this.deps;
    const params = op.params as unknown as RecoveryParams;
    const store = op.store ? storage.stores.get(op.store) : undefined;
    const old = storage.slots.get(params.old);
    const target = storage.slots.get(params.target);
    const oldMachine = storage.machines.get(params.oldMachine);
    const targetMachine = storage.machines.get(params.targetMachine);
    if (!store || !old || !target || !oldMachine || !targetMachine) return undefined;
    const atRisk = storage.atRisk.list(store.name).find((r) => r.id === params.atRisk);
    return { now: Date.now(), op, params, store, old, target, oldMachine, targetMachine, atRisk, connected: this.deps.connected() };
  }

  step(op: OperationRow): boolean {
    const v = this.view(op);
    if (!v) return this.deps.record(op, { to: 'done', state: 'failed', rule: `${op.step} -> done`, reason: 'store or slot removed from the cluster meanwhile', error: 'the store or one of its slots was removed', epoch: 0 }, 'recover-done', () => undefined);
    const fired = firstRecoveryRule(v);
    if (!fired) return false;
    const { rule, detail } = fired;
    return this.deps.record(
      op,
      { to: rule.to, state: rule.state ?? 'running', rule: `${rule.from} -> ${rule.to}`, reason: `${rule.reason}: ${detail}`, ...(rule.failure ? { error: detail } : {}), epoch: v.store.epoch },
      `recover-${rule.to}`,
      () => this.act(rule.action, v),
    );
  }

  resume(op: OperationRow): void {
    const v = this.view(op);
    const action = RECOVERY_RULES.find((r) => r.to === op.step)?.action;
    if (v && action) this.act(action, v);
  }

  private act(action: RecoveryAction, v: RecoveryView): void {
    const { storage } = this.deps;
    const p = v.params;
    switch (action) {
      case 'open-listener':
        if (v.atRisk?.state === 'open') storage.atRisk.update(v.atRisk, { state: 'recovering', reason: `recovery ${v.op.id} started`, op: v.op.id });
        storage.requests.recoverListen(p.target, v.op.id);
        this.deps.push([p.targetMachine]);
        return;
      case 'request-push':
        storage.requests.recoverPush(p.old, v.op.id, p.target, p.mailboxes);
        this.deps.push([p.oldMachine]);
        return;
      case 'close': {
        const result = v.old.recoverResult?.op === v.op.id ? v.old.recoverResult : undefined;
        const complete = result !== undefined && result.done && recoveryComplete(result);
        storage.transaction(() => {
          storage.requests.recoverListen(p.target, '');
          storage.requests.recoverPush(p.old, '', '', []);
          const record = storage.atRisk.list(v.store.name).find((r) => r.id === p.atRisk);
          if (record && record.closedAt === null) this.closeRecord(record, v, complete, result);
          if (complete) storage.slots.setRecoveryHold(p.old, '');
        });
        this.deps.push([p.targetMachine, p.oldMachine]);
        return;
      }
      default:
        return;
    }
  }

  private closeRecord(record: AtRiskRow, v: RecoveryView, complete: boolean, result: RecoveryView['old']['recoverResult']): void {
    const summary = { op: v.op.id, mailboxes: result?.mailboxes ?? [], error: result?.error ?? (result ? '' : 'no result from the returning slot') };
    this.deps.storage.atRisk.update(record, {
      state: complete ? 'recovered' : 'open',
      result: summary,
      op: v.op.id,
      reason: complete
        ? `recovered by ${v.op.id}: ${summary.mailboxes.length} mailbox(es) pushed to ${v.params.target}, every message verified there; ${v.params.old} starts as replica`
        : `recovery ${v.op.id} incomplete: the record stays open, ${v.params.old} stays stopped; see slotctl store at-risk ${v.store.name} --json for each mailbox`,
    });
  }
}
