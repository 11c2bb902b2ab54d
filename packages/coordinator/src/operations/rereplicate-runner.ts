// Re-replication on the coordinator: `slotctl machine retire M` marks a down machine gone for good and starts one
// operation per store it leaves without a replica (rereplicate-rules.ts), each on the peer the planner chooses.
import { randomUUID } from 'node:crypto';
import { ALL_MAILBOXES, NotFoundError } from '@slotctl/shared';
import { OperationConflict, type DiskRow, type OperationRow } from '../db/rows.js';
import { planReReplication } from '@slotctl/planner';
import { clusterFromRows } from '../placement/from-rows.js';
import type { RunnerDeps } from './rule-table.js';
import { RE_REPLICATION_DEFAULTS, RE_REPLICATION_RULES, firstReReplicationRule, type ReReplicationAction, type ReReplicationParams, type ReReplicationView } from './rereplicate-rules.js';

/**
 * Where a partition of the old slot goes on the new machine: the same place under the disk of the same name (disk
 * paths may differ per machine), else under a disk of the same class, else the same path.
 */
export function pathOnMachine(path: string, fromDisks: readonly DiskRow[], toDisks: readonly DiskRow[], preferClass: string): string {
  const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir.replace(/\/$/, '')}/`);
  const disk = [...fromDisks].filter((d) => under(path, d.path)).sort((a, b) => b.path.length - a.path.length)[0];
  if (!disk) return path;
  const to = toDisks.find((d) => d.name === disk.name) ?? toDisks.find((d) => d.class === disk.class) ?? toDisks.find((d) => d.class === preferClass);
  return to ? `${to.path.replace(/\/$/, '')}${path.slice(disk.path.replace(/\/$/, '').length)}` : path;
}

export class ReReplicationRunner {
  constructor(private readonly deps: RunnerDeps) {}

  /** `slotctl machine retire M [--dry-run]`. Run again, it re-plans what is still missing (a failed seed resumes). */
  retire(machine: string, dryRun: boolean): { plan: string[]; problems: string[]; operations: OperationRow[] } {
    const { storage } = this.deps;
    const row = storage.machines.get(machine);
    if (!row) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
    const problems: string[] = [];
    if (row.state !== 'down') problems.push(`machine ${machine} is ${row.state}, not down: retire is for a machine that will not return (to empty a live machine, drain it first: slotctl machine drain ${machine})`);
    const slots = new Map(storage.slots.list().map((s) => [s.name, s]));
    const stores = storage.stores.list();
    const mastered = stores.filter((s) => slots.get(s.masterSlot)?.machine === machine).map((s) => s.name);
    if (mastered.length) problems.push(`machine ${machine} is still master of ${mastered.join(', ')}: fail them over first (slotctl machine failover ${machine})`);
    const running = new Set(storage.operations.running().map((o) => o.store));
    // stores whose new replica was created but never verified (an earlier attempt failed) resume with that slot
    const unfinished = stores.filter((s) => slots.get(s.replicaSlot)?.seeding && !running.has(s.name));
    const cluster = clusterFromRows({ machines: storage.machines.list().filter((m) => m.name !== machine), stores, slots: [...slots.values()] });
    const planned = planReReplication(cluster, machine);
    problems.push(...planned.unplaced.filter((u) => !mastered.includes(u.store)).map((u) => `${u.store}: ${u.reason}`));
    const work: ReReplicationParams[] = [];
    for (const move of planned.moves) {
      if (running.has(move.store)) {
        problems.push(`${move.store}: busy with another operation`);
        continue;
      }
      const store = stores.find((s) => s.name === move.store)!;
      const old = slots.get(store.replicaSlot)!;
      const target = `${store.name}-${move.to}`;
      if (slots.has(target)) {
        problems.push(`${move.store}: a slot named ${target} exists already`);
        continue;
      }
      const targetRow = storage.machines.get(move.to)!;
      const dataPath = pathOnMachine(old.dataPath, row.disks, targetRow.disks, 'hdd');
      const metaPath = pathOnMachine(old.metaPath, row.disks, targetRow.disks, 'ssd');
      const clash = [...slots.values()].find((s) => s.machine === move.to && (s.dataPath === dataPath || s.metaPath === metaPath));
      if (clash) {
        problems.push(`${move.store}: ${move.to} already uses ${dataPath} or ${metaPath} (slot ${clash.name})`);
        continue;
      }
      work.push(this.params(store.masterSlot, slots.get(store.masterSlot)!.machine, old.name, machine, target, move.to, dataPath, metaPath));
    }
    for (const store of unfinished) {
      const replica = slots.get(store.replicaSlot)!;
      work.push(this.params(store.masterSlot, slots.get(store.masterSlot)!.machine, replica.name, replica.machine, replica.name, replica.machine, replica.dataPath, replica.metaPath));
    }
    const plan = work.flatMap((p) => {
      const store = slots.get(p.master)!.store;
      return [`${store}: new replica ${p.target} on ${p.targetMachine}${p.target === p.oldReplica ? ' (resuming its unfinished seed)' : ` replaces ${p.oldReplica}`}; ${planned.moves.find((m) => m.store === store)?.reason ?? ''}`];
    });
    if (dryRun || problems.some((p) => p.startsWith(`machine ${machine}`))) return { plan, problems, operations: [] };
    storage.machines.retire(machine, `operator retired ${machine}: it will not return; ${work.length} store(s) get a new replica on a peer, its slots' files stay on its disks`);
    const operations: OperationRow[] = [];
    for (const params of work) {
      const store = slots.get(params.master)!.store;
      const id = `rr-${randomUUID().slice(0, 8)}`;
      try {
        storage.operations.create({ id, kind: 'rereplicate', store, machine: params.targetMachine, step: 'preflight', params: { ...params }, epoch: storage.stores.get(store)!.epoch, reason: `re-replication of ${store}: ${params.target} on ${params.targetMachine} replaces ${params.oldReplica} (${params.oldMachine})` });
        operations.push(storage.operations.get(id)!);
      } catch (err) {
        if (!(err instanceof OperationConflict)) throw err;
        problems.push(`${store}: busy: ${err.message}`);
      }
    }
    return { plan, problems, operations };
  }

  private params(master: string, masterMachine: string, oldReplica: string, oldMachine: string, target: string, targetMachine: string, dataPath: string, metaPath: string): ReReplicationParams {
    return { master, masterMachine, oldReplica, oldMachine, target, targetMachine, dataPath, metaPath, timeoutMs: RE_REPLICATION_DEFAULTS.timeoutMs, verifyTimeoutMs: RE_REPLICATION_DEFAULTS.verifyTimeoutMs };
  }

  view(op: OperationRow): ReReplicationView | undefined {
    const { storage } = this.deps;
    const params = op.params as unknown as ReReplicationParams;
    const store = op.store ? storage.stores.get(op.store) : undefined;
    if (!store) return undefined;
    return {
      now: Date.now(),
      op,
      params,
      store,
      master: storage.slots.get(params.master),
      target: storage.slots.get(params.target),
      masterMachine: storage.machines.get(params.masterMachine),
      targetMachine: storage.machines.get(params.targetMachine),
      connected: this.deps.connected(),
      checkId: typeof op.result.checkId === 'string' ? op.result.checkId : '',
    };
  }

  step(op: OperationRow): boolean {
    const v = this.view(op);
    if (!v) return this.deps.record(op, { to: 'done', state: 'failed', rule: `${op.step} -> done`, reason: 'store removed from the cluster meanwhile', error: 'the store was removed', epoch: 0 }, 'rereplicate-done', () => undefined);
    const fired = firstReReplicationRule(v);
    if (!fired) return false;
    const { rule, detail } = fired;
    return this.deps.record(
      op,
      { to: rule.to, state: rule.state ?? 'running', rule: `${rule.from === '*' ? op.step : rule.from} -> ${rule.to}`, reason: `${rule.reason}: ${detail}`, ...(rule.failure ? { error: detail } : {}), epoch: v.store.epoch },
      `rereplicate-${rule.to}`,
      () => this.act(rule.action, v),
    );
  }

  resume(op: OperationRow): void {
    const v = this.view(op);
    const action = RE_REPLICATION_RULES.find((r) => r.to === op.step && r.from !== r.to && !r.failure)?.action;
    if (v && action) this.act(action, v);
  }

  private act(action: ReReplicationAction, v: ReReplicationView): void {
    const { storage } = this.deps;
    const p = v.params;
    const both = [p.masterMachine, p.targetMachine];
    switch (action) {
      case 'create-slot':
        if (v.store.replicaSlot === p.target) storage.slots.setSeeding(p.target, v.op.id);
        else storage.stores.replaceReplica({ store: v.store.name, machine: p.targetMachine, slot: p.target, dataPath: p.dataPath, metaPath: p.metaPath, expectEpoch: v.store.epoch, op: v.op.id, reason: `re-replication ${v.op.id}: ${p.target} on ${p.targetMachine} replaces ${p.oldReplica} (${p.oldMachine}, retired); not promotable until verified` });
        this.deps.push([...both, p.oldMachine]);
        return;
      case 'request-seed':
        storage.requests.seed(p.master, v.op.id);
        this.deps.push([p.masterMachine]);
        return;
      case 'request-check': {
        const attempt = Number(v.op.result.checkAttempt ?? 0) + 1;
        const checkId = `${v.op.id}.${attempt}`;
        storage.transaction(() => {
          storage.requests.check(p.master, checkId, [ALL_MAILBOXES]);
          storage.requests.check(p.target, checkId, [ALL_MAILBOXES]);
          storage.operations.mergeResult(v.op.id, { checkAttempt: attempt, checkId, checkAskedAt: Date.now() });
        });
        this.deps.push(both);
        return;
      }
      case 'finish':
      case 'end-failed':
        storage.transaction(() => {
          // a failed attempt keeps the seeding mark: the replica is not known to be complete
          if (action === 'finish' && storage.slots.get(p.target)?.seeding === v.op.id) storage.slots.setSeeding(p.target, '');
          storage.requests.seed(p.master, '');
          storage.requests.check(p.master, '', []);
          if (storage.slots.get(p.target)) storage.requests.check(p.target, '', []);
        });
        this.deps.push(both);
        return;
      default:
        return;
    }
  }
}
