// Machine loss, on the coordinator: a level-triggered check (every evaluation) finds stores whose master is on a
// machine declared down and starts one failover operation per store, unless more machines with masters are down at
// once than automatic failover allows (a network problem is likelier then: a critical event, and an operator
// decides with `slotctl machine failover M --force`). Each failover runs its rule table (failover-rules.ts).
import { randomUUID } from 'node:crypto';
import { ConflictError, NotFoundError, withContext } from '@slotctl/shared';
import { OperationConflict, type OperationRow } from '../db/rows.js';
import type { RunnerDeps } from './rule-table.js';
import { FAILOVER_RULES, automaticFailover, failoverPlan, failoverProblems, firstFailoverRule, type FailoverAction, type FailoverParams, type FailoverView } from './failover-rules.js';

export const FAILOVER_DEFAULTS = { settleTimeoutMs: 60_000, maxAutomaticMachines: 1 };

export interface FailoverDeps extends RunnerDeps {
  /** More machines with masters down at once than this: no automatic failover. */
  maxAutomaticMachines: number;
  /** Asks a running switchover of a store whose master machine died to roll back (it cannot finish). */
  cancelQuietly: (op: OperationRow) => void;
}

export class FailoverRunner {
  /** The machines withheld at the last check, so that the critical event is written once per situation. */
  private withheldAlarm = new Set<string>();
  /** Per store: why an automatic failover cannot start now (an event when it changes, not an operation per tick). */
  private readonly blocked = new Map<string, string>();

  constructor(private readonly deps: FailoverDeps) {}

  /** Level-triggered: start the failovers that are due; alarm when too many machines are down at once. */
  check(running: readonly OperationRow[]): void {
    // runs on every evaluation: only machines holding masters that are down or suspect are read (usually none)
    const affected = this.deps.storage.machines.withMastersDownOrSuspect();
    const machines = affected.filter((m) => m.state === 'down').map((m) => m.machine);
    const suspect = affected.filter((m) => m.state === 'suspect').map((m) => m.machine);
    const { machines: automatic, withheld } = automaticFailover(machines, suspect, this.deps.maxAutomaticMachines);
    this.alarm(withheld);
    if (automatic.length === 0) return;
    const busy = new Map(running.filter((o) => o.store).map((o) => [o.store!, o]));
    for (const machine of automatic) {
      for (const store of this.deps.storage.stores.masteredOn(machine)) {
        const op = busy.get(store.name);
        if (op) {
          if (op.kind === 'switchover' && !op.cancelRequested) this.deps.cancelQuietly(op);
          continue;
        }
        const why = this.paramsFor(store.name, false).problems.join('; ');
        if (why) {
          if (this.blocked.get(store.name) !== why) {
            this.blocked.set(store.name, why);
            this.deps.storage.events.append({ kind: 'store.failover-blocked', store: store.name, machine, reason: `no automatic failover of ${store.name} for now: ${why}`, data: { severity: 'critical' } });
            this.deps.log.error({ store: store.name, machine }, `no automatic failover of ${store.name} for now: ${why}`);
          }
          continue;
        }
        this.blocked.delete(store.name);
        this.tryStart(store.name, false);
      }
    }
  }

  /**
   * The critical event when machines are withheld from automatic failover: once when a machine joins the withheld
   * set, not again as the set shrinks (after a coordinator's cold start, a thousand machines coming back one by one
   * each rewrote a thousand names).
   */
  private alarm(withheld: readonly string[]): void {
    const joined = withheld.filter((m) => !this.withheldAlarm.has(m));
    this.withheldAlarm = new Set(withheld);
    if (joined.length === 0) return;
    const shown = withheld.length > 20 ? `${withheld.slice(0, 20).join(', ')} and ${withheld.length - 20} more` : withheld.join(', ');
    const reason = `${withheld.length} machines with masters are down at once (${shown}): no automatic failover (limit ${this.deps.maxAutomaticMachines}) — a network problem is likelier than that many machines dying. Check the network; to fail over a machine anyway: slotctl machine failover MACHINE --force`;
    this.deps.storage.events.append({ kind: 'cluster.failover-withheld', reason, data: { severity: 'critical', machines: withheld } });
    this.deps.log.error({ machines: withheld.length, joined: joined.slice(0, 20) }, reason);
  }

  private tryStart(store: string, forced: boolean): OperationRow | undefined {
    try {
      return this.start(store, forced);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return undefined;
    }
  }

  paramsFor(storeName: string, forced: boolean): { params: FailoverParams; problems: string[]; plan: string[] } {
    const { storage } = this.deps;
    const store = storage.stores.get(storeName);
    if (!store) throw new NotFoundError(`store "${storeName}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
    const from = storage.slots.get(store.masterSlot)!;
    const to = storage.slots.get(store.replicaSlot)!;
    const params: FailoverParams = { from: from.name, to: to.name, fromMachine: from.machine, toMachine: to.machine, epoch: store.epoch, settleTimeoutMs: FAILOVER_DEFAULTS.settleTimeoutMs, forced };
    const v = { params, store, from, to, fromMachine: storage.machines.get(from.machine)!, toMachine: storage.machines.get(to.machine)!, connected: this.deps.connected() };
    return { params, problems: failoverProblems(v), plan: failoverPlan(params, store.name, store.serviceIp) };
  }

  start(storeName: string, forced: boolean): OperationRow {
    const { params } = this.paramsFor(storeName, forced);
    const id = `fo-${randomUUID().slice(0, 8)}`;
    try {
      this.deps.storage.operations.create({
        id,
        kind: 'failover',
        store: storeName,
        step: 'preflight',
        params: { ...params },
        epoch: params.epoch,
        reason: `failover of ${storeName}: master machine ${params.fromMachine} is down; ${params.to} (${params.toMachine}) takes over${forced ? ' (forced by an operator)' : ''}`,
      });
    } catch (err) {
      if (err instanceof OperationConflict) throw new ConflictError(`store ${storeName} is busy: ${err.message}`, { hint: `wait for it: slotctl operations show ${err.running.id} --wait` });
      throw err;
    }
    return this.deps.storage.operations.get(id)!;
  }

  /** The stores whose master is on `machine` (the operator's `machine failover`): their preview or their start. */
  storesOf(machine: string): string[] {
    const { storage } = this.deps;
    if (!storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
    return storage.stores.masteredOn(machine).map((s) => s.name);
  }

  view(op: OperationRow): FailoverView | undefined {
    const { storage } = this.deps;
    const params = op.params as unknown as FailoverParams;
    const store = op.store ? storage.stores.get(op.store) : undefined;
    const from = storage.slots.get(params.from);
    const to = storage.slots.get(params.to);
    const fromMachine = storage.machines.get(params.fromMachine);
    const toMachine = storage.machines.get(params.toMachine);
    if (!store || !from || !to || !fromMachine || !toMachine) return undefined;
    return { now: Date.now(), op, params, store, from, to, fromMachine, toMachine, connected: this.deps.connected() };
  }

  step(op: OperationRow): boolean {
    const v = this.view(op);
    if (!v) return this.deps.record(op, { to: 'done', state: 'failed', rule: `${op.step} -> done`, reason: 'store or slot removed from the cluster meanwhile', error: 'the store or one of its slots was removed', epoch: 0 }, 'failover-done', () => undefined);
    const fired = firstFailoverRule(v);
    if (!fired) return false;
    const { rule, detail } = fired;
    const epoch = rule.action === 'promote' ? v.params.epoch : v.store.epoch;
    return this.deps.record(
      op,
      { to: rule.to, state: rule.state ?? 'running', rule: `${rule.from} -> ${rule.to}`, reason: `${rule.reason}: ${detail}`, ...(rule.failure ? { error: detail } : {}), epoch },
      `failover-${rule.to}`,
      () => this.act(rule.action, v),
    );
  }

  /** Runs the action of an operation's recorded step again (coordinator restart). */
  resume(op: OperationRow): void {
    const v = this.view(op);
    const action = FAILOVER_RULES.find((r) => r.to === op.step)?.action;
    if (v && action) this.act(action, v);
  }

  private act(action: FailoverAction, v: FailoverView): void {
    const { storage } = this.deps;
    const p = v.params;
    if (action !== 'promote') return;
    const log = withContext(this.deps.log, { op: v.op.id, store: v.store.name, epoch: p.epoch + 1 });
    try {
      storage.transaction(() => {
        storage.stores.setMaster(v.store.name, p.to, p.epoch, `failover ${v.op.id}: ${p.fromMachine} is down; ${p.from} -> ${p.to}`, v.op.id);
        // the old master comes back stopped, and stays so until what it did not replicate is recovered
        storage.slots.setRecoveryHold(p.from, v.op.id);
        storage.slots.setOpHold(p.from, '');
        if (!storage.atRisk.openOfSlot(p.from)) {
          storage.atRisk.create({ store: v.store.name, slot: p.from, machine: p.fromMachine, op: v.op.id, epoch: p.epoch + 1, backlog: { ...v.from.backlog, reportedAt: v.from.reportedAt } });
        }
      });
      log.warn({ from: p.from, to: p.to, backlog: v.from.backlog }, `failover: ${p.to} promoted; ${p.from}'s last backlog (${v.from.backlog.files} file(s), ${v.from.backlog.mailboxes} mailbox(es)) recorded as at risk`);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'promotion not done');
    }
    this.deps.push([p.toMachine, p.fromMachine]);
  }
}
