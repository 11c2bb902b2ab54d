// The re-replication kind: one store whose replica was on a machine retired for good, as a table, with its view,
// its actions and `slotctl machine retire M`, which starts one per store (on the peer the planner chooses).
//
//   preflight ─► create ─► seed ─► verify ─► done
//
// create: one transaction replaces the store's replica slot by a new slot on the chosen peer (same IP and paths,
// epoch + 1; the old slot's row moves to retired_slots, its files stay on the retired machine) and marks the new
// slot `seeding`: a replica that has not been verified to hold everything is never promoted (failover and
// switchover refuse it). seed: the master copies every user to it (sync_client -u). verify: the new replica, summarized
// 1.5 s after the master, holds every mailbox of the master's summary as new or newer (copy-compare.ts), compared again
// every 2 s while it does not, up to a bound. done: the seeding mark is cleared; the store is whole again.
import { randomUUID } from 'node:crypto';
import { NotFoundError } from '@slotctl/shared';
import { OperationConflict, type DiskRow, type OperationRow } from '../../db/rows.js';
import { planReReplication } from '@slotctl/planner';
import { clusterFromRows } from '../../placement/from-rows.js';
import { dispatchTo, failedAsRemoved, neverCancelled, type KindContext, type OperationKind } from '../framework/kind.js';
import { until, type Rule } from '../framework/rule.js';
import { COMPARE_ACTION_DOCS, compareAction, compareRows, compareWaiting, copyView, lastProgressAt, seedProgressText, up, type CompareAction, type CopyView } from './copy-compare.js';

export type ReReplicationStep = 'preflight' | 'create' | 'seed' | 'verify' | 'done';
export type ReReplicationAction = 'none' | 'create-slot' | 'request-seed' | CompareAction | 'finish' | 'end-failed';

export interface ReReplicationParams {
  master: string;
  masterMachine: string;
  /** The slot being replaced, on the retired machine. */
  oldReplica: string;
  oldMachine: string;
  /** The new replica slot and its machine. */
  target: string;
  targetMachine: string;
  /** Its partitions on the new machine (the old ones' places under the disks of the same name). */
  dataPath: string;
  metaPath: string;
  timeoutMs: number;
  verifyTimeoutMs: number;
}

/** The kinds' shared view (copy-compare.ts); the seed slot's wait is optional for hand-made views. */
export interface ReReplicationView extends Omit<CopyView<ReReplicationParams>, 'seedWait'> {
  seedWait?: string;
}

export type ReReplicationRule = Rule<ReReplicationView, ReReplicationAction, ReReplicationStep>;

export const RE_REPLICATION_DEFAULTS = { timeoutMs: 3_600_000, verifyTimeoutMs: 120_000 };


export function reReplicationProblems(v: Omit<ReReplicationView, 'now' | 'op' | 'checkId'>): string[] {
  const p = v.params;
  const problems: string[] = [];
  const created = v.store.replicaSlot === p.target;
  if (!created && v.store.replicaSlot !== p.oldReplica) problems.push(`store ${v.store.name}'s replica is ${v.store.replicaSlot} now, not ${p.oldReplica}: nothing to replace`);
  if (v.store.masterSlot !== p.master) problems.push(`store ${v.store.name}'s master is ${v.store.masterSlot} now, not ${p.master}`);
  if (!up(v.masterMachine, v.connected)) problems.push(`machine ${p.masterMachine} (master) is not up with its agent connected`);
  if (!up(v.targetMachine, v.connected)) problems.push(`machine ${p.targetMachine} (new replica) is not up with its agent connected`);
  else if (v.targetMachine!.retiredAt) problems.push(`machine ${p.targetMachine} is retired`);
  if (p.targetMachine === p.masterMachine) problems.push(`the new replica cannot be on the master's machine ${p.masterMachine}`);
  if (v.master && (v.master.observedRole !== 'MASTER' || v.master.observedState !== 'SERVING')) problems.push(`slot ${p.master} is not serving as master (${v.master.observedState} ${v.master.observedRole || '-'})`);
  return problems;
}

export const RE_REPLICATION_RULES: readonly ReReplicationRule[] = [
  {
    from: '*', to: 'done', state: 'failed', reason: 'timed out', failure: true, action: 'end-failed', doc: 'an hour without progress, from the create or the copy\'s last progress report (the new replica stays marked seeding)',
    // counted from the create (waiting in preflight for a seed slot is not the copy's time), then from each progress
    // report: a large store copies for hours, a stuck copy reports nothing
    when: (v) => (v.op.step !== 'preflight' && v.now - Math.max(Number(v.op.result.copyingSince ?? 0) || Date.parse(v.op.createdAt), lastProgressAt(v.master, v.op.id)) > v.params.timeoutMs ? `not done, and no progress for ${Math.round(v.params.timeoutMs / 1000)} s (at step ${v.op.step}); the new replica stays marked seeding` : undefined),
  },
  {
    from: 'preflight', to: 'done', state: 'refused', reason: 'cannot re-replicate', failure: true, action: 'none', doc: 'the store\'s replica or master changed, a machine not up and connected, the target retired or the master\'s machine, the master not serving (judged once a seed slot is free: a wait for one refuses nothing)',
    when: (v) => {
      if (v.seedWait) return undefined;
      const problems = reReplicationProblems(v);
      return problems.length ? problems.join('; ') : undefined;
    },
  },
  { from: 'preflight', to: 'create', reason: 'new replica slot created', action: 'create-slot', doc: 'otherwise, once a seed slot is free (`--max-seeds`, `--max-seeds-per-machine`)', when: (v) => (v.seedWait ? undefined : `${v.params.target} on ${v.params.targetMachine} replaces ${v.params.oldReplica} (${v.params.oldMachine})`) },
  {
    from: 'create', to: 'done', state: 'failed', reason: 'a machine is gone', failure: true, action: 'end-failed', doc: 'the master\'s or the new replica\'s machine is not up and connected',
    when: (v) => (!up(v.masterMachine, v.connected) || !up(v.targetMachine, v.connected) ? `${!up(v.masterMachine, v.connected) ? v.params.masterMachine : v.params.targetMachine} is not up with its agent connected` : undefined),
  },
  {
    from: 'create', to: 'seed', reason: 'new replica serving', action: 'request-seed', doc: 'the new replica serves as replica at the new epoch and the master applied it',
    when: (v) =>
      v.target?.observedState === 'SERVING' && v.target.observedRole === 'REPLICA' && v.target.epochApplied >= v.store.epoch && (v.master?.epochApplied ?? 0) >= v.store.epoch
        ? `${v.params.target} serves as replica at epoch ${v.store.epoch}; ${v.params.master} copies every user to it`
        : undefined,
  },
  {
    from: 'seed', to: 'done', state: 'failed', reason: 'initial sync failed', failure: true, action: 'end-failed', doc: 'the seed failed (the users not copied named)',
    when: (v) => {
      const r = v.master?.results.seed;
      return r?.op === v.op.id && !r.ok ? `${r.error || 'no detail'}${r.failed.length ? ` (not copied: ${r.failed.slice(0, 10).join(', ')})` : ''}` : undefined;
    },
  },
  {
    from: 'seed', to: 'verify', reason: 'initial sync done', action: 'request-check', doc: 'the seed succeeded',
    when: (v) => {
      const r = v.master?.results.seed;
      return r?.op === v.op.id && r.ok ? `${r.users} user(s), ${r.mailboxes} mailbox(es), ${r.messages} message(s) in ${r.ms} ms; comparing every mailbox on both slots` : undefined;
    },
  },
  ...compareRows<ReReplicationView, ReReplicationAction, ReReplicationStep>('verify', { to: 'done', state: 'succeeded', reason: 'new replica verified', action: 'finish', doc: "every mailbox of the master's summary on the new replica, same uniqueid and UIDVALIDITY, last UID and modseq at least the master's" }, { to: 'done', state: 'failed', action: 'end-failed' }),
];

function rereplicateView(op: OperationRow, ctx: KindContext): ReReplicationView | undefined {
  return copyView<ReReplicationParams>(op, ctx);
}

function act(action: ReReplicationAction, v: ReReplicationView, ctx: KindContext): void {
  const { storage } = ctx;
  const p = v.params;
  const both = [p.masterMachine, p.targetMachine];
  switch (action) {
    case 'create-slot':
      if (v.store.replicaSlot === p.target) storage.slots.setSeeding(p.target, v.op.id);
      else storage.stores.replaceReplica({ store: v.store.name, machine: p.targetMachine, slot: p.target, dataPath: p.dataPath, metaPath: p.metaPath, expectEpoch: v.store.epoch, op: v.op.id, reason: `re-replication ${v.op.id}: ${p.target} on ${p.targetMachine} replaces ${p.oldReplica} (${p.oldMachine}, retired); not promotable until verified` });
      if (!v.op.result.copyingSince) storage.operations.mergeResult(v.op.id, { copyingSince: Date.now() });
      ctx.push([...both, p.oldMachine]);
      return;
    case 'request-seed':
      // a store on one copy: copied at full speed whatever the master's agent's --seed-rate-limit
      storage.requests.put(p.master, { kind: 'seed', id: v.op.id, fullSpeed: true });
      ctx.push([p.masterMachine]);
      return;
    case 'request-check':
    case 'note-master':
    case 'request-target-check':
      return compareAction(action, v, ctx);
    case 'finish':
    case 'end-failed':
      storage.transaction(() => {
        // a failed attempt keeps the seeding mark: the replica is not known to be complete
        if (action === 'finish' && storage.slots.get(p.target)?.seeding === v.op.id) storage.slots.setSeeding(p.target, '');
        storage.requests.withdraw(p.master, 'seed');
        storage.requests.withdraw(p.master, 'check');
        if (storage.slots.get(p.target)) storage.requests.withdraw(p.target, 'check');
      });
      ctx.push(both);
      return;
    default:
      return;
  }
}

export function rereplicateWaiting(v: ReReplicationView): string {
  const p = v.params;
  const left = `, ${until(new Date(Math.max(Number(v.op.result.copyingSince ?? 0) || Date.parse(v.op.createdAt), lastProgressAt(v.master, v.op.id))).toISOString(), p.timeoutMs)} without progress`;
  if (v.op.step === 'preflight' && v.seedWait) return v.seedWait;
  if (v.op.step === 'create') {
    const t = v.target;
    return `${p.target} to serve as replica at epoch ${v.store.epoch} and ${p.master} to apply it (now ${t ? `${t.observedState} as ${t.observedRole || 'nothing'} at ${t.epochApplied}` : 'not created'}, ${p.master} at ${v.master?.epochApplied ?? '?'})${left}`;
  }
  if (v.op.step === 'seed') return `${p.master} to copy every user to ${p.target} (sync_client -u)${seedProgressText(v.master, v.op.id)}${left}`;
  if (v.op.step === 'verify') return compareWaiting(v);
  return '';
}

export const REREPLICATE: OperationKind<ReReplicationView, ReReplicationAction> = {
  name: 'rereplicate',
  idPrefix: 'rr',
  rules: RE_REPLICATION_RULES,
  actionDocs: {
    'create-slot': 'one transaction: the old replica slot moves to `retired_slots`, a new slot on the peer takes its IP, marked seeding, epoch + 1',
    'request-seed': 'ask the master to copy every user to the new replica (sync_client -u, 50 per call)',
    ...COMPARE_ACTION_DOCS,
    finish: 'clear the seeding mark and the requests',
    'end-failed': 'clear the requests; the seeding mark stays (the replica is not known to be complete)',
  },
  view: rereplicateView,
  actions: { none: () => undefined, ...dispatchTo<ReReplicationView, Exclude<ReReplicationAction, 'none'>>(['create-slot', 'request-seed', 'request-check', 'note-master', 'request-target-check', 'finish', 'end-failed'], act) },

  gone: failedAsRemoved('store removed from the cluster meanwhile', 'the store was removed', 0),
  epoch: (v) => v.store.epoch,
  crashName: (step) => `rereplicate-${step}`,
  cancelRefusal: neverCancelled('a re-replication: it only adds a replica and ends by itself or at its timeout', 'wait for it to end (slotctl operations show ID --wait); run slotctl machine retire again to resume a failed one'),
  waiting: rereplicateWaiting,
};

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

/** `slotctl machine retire M [--dry-run]`. Run again, it re-plans what is still missing (a failed seed resumes). */
export function retireMachine(ctx: KindContext, machine: string, dryRun: boolean): { plan: string[]; problems: string[]; operations: OperationRow[] } {
  const { storage } = ctx;
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
    work.push(rereplicateParams(store.masterSlot, slots.get(store.masterSlot)!.machine, old.name, machine, target, move.to, dataPath, metaPath));
  }
  for (const store of unfinished) {
    const replica = slots.get(store.replicaSlot)!;
    work.push(rereplicateParams(store.masterSlot, slots.get(store.masterSlot)!.machine, replica.name, replica.machine, replica.name, replica.machine, replica.dataPath, replica.metaPath));
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
    const id = `${REREPLICATE.idPrefix}-${randomUUID().slice(0, 8)}`;
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

function rereplicateParams(master: string, masterMachine: string, oldReplica: string, oldMachine: string, target: string, targetMachine: string, dataPath: string, metaPath: string): ReReplicationParams {
  return { master, masterMachine, oldReplica, oldMachine, target, targetMachine, dataPath, metaPath, timeoutMs: RE_REPLICATION_DEFAULTS.timeoutMs, verifyTimeoutMs: RE_REPLICATION_DEFAULTS.verifyTimeoutMs };
}

