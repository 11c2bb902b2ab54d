// `slotctl cluster apply`: parse, check, plan and write, all inside one IMMEDIATE transaction so the checks see the
// same database the writes change. Any problem → nothing written.
import { nowIso, type Repository } from '../db/repository.js';
import { CLEANUP_SETTING } from '../cleanup/config.js';
import { masterSlotName, planCluster, replicaSlotName, type Change } from './plan.js';
import { parseCluster, slotName, type ClusterSpec, type Problem } from '@slotctl/shared/cluster-spec';

export interface ApplyOutcome {
  ok: boolean;
  applied: boolean;
  problems: Problem[];
  changes: Change[];
  /** Machines whose desired state may have changed. */
  touchedMachines: string[];
}

export function applyCluster(repo: Repository, text: string, options: { dryRun: boolean; prune: boolean; source: string }): ApplyOutcome {
  const parsed = parseCluster(text);
  if (!parsed.spec) return { ok: false, applied: false, problems: parsed.problems, changes: [], touchedMachines: [] };
  const spec = parsed.spec;

  const run = repo.db.transaction((): ApplyOutcome => {
    const current = { machines: repo.listMachines(), stores: repo.listStores(), slots: repo.listSlots(), busy: repo.busyStores() };
    const plan = planCluster(spec, current, parsed.locate, options.prune);
    // the cleanup policy: the file's section, or the defaults when it has none
    const policy = spec.cleanup ? JSON.stringify(spec.cleanup) : undefined;
    if ((repo.getSetting(CLEANUP_SETTING) ?? undefined) !== policy) {
      plan.changes.push({ action: 'update', kind: 'settings', name: 'cleanup', detail: policy ? `cleanup policy ${policy}` : 'cleanup policy back to the defaults' });
    }
    if (plan.problems.length) return { ok: false, applied: false, problems: plan.problems, changes: plan.changes, touchedMachines: [] };
    const effective = plan.changes.filter((c) => c.action !== 'keep');
    if (options.dryRun || effective.length === 0) {
      return { ok: true, applied: false, problems: [], changes: plan.changes, touchedMachines: [] };
    }
    write(repo, spec, effective, options.source);
    if (effective.some((c) => c.kind === 'settings')) {
      repo.setSetting(CLEANUP_SETTING, policy);
      repo.insertEvent({ kind: 'cluster.settings-update', reason: `cluster apply (${options.source}): ${effective.find((c) => c.kind === 'settings')!.detail}` });
    }
    const touched = new Set<string>();
    for (const slot of current.slots) touched.add(slot.machine);
    for (const store of spec.stores) for (const slot of store.slots) touched.add(slot.machine);
    return { ok: true, applied: true, problems: [], changes: plan.changes, touchedMachines: [...touched] };
  });
  return run.immediate();
}

function write(repo: Repository, spec: ClusterSpec, changes: Change[], source: string): void {
  const db = repo.db;
  const at = nowIso();
  const machines = new Map(spec.machines.map((m) => [m.name, m]));
  const stores = new Map(spec.stores.map((s) => [s.name, s]));
  const insertMachine = db.prepare(
    "INSERT INTO machines (name, address, disks, slot_capacity, rack, state, state_since, created_at) VALUES (?, ?, ?, ?, ?, 'unknown', ?, ?)",
  );
  const updateMachine = db.prepare('UPDATE machines SET address = ?, disks = ?, slot_capacity = ?, rack = ? WHERE name = ?');
  const insertStore = db.prepare(
    'INSERT INTO stores (name, service_ip, master_slot, replica_slot, epoch, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)',
  );
  const updateStore = db.prepare('UPDATE stores SET service_ip = ?, updated_at = ? WHERE name = ?');
  const insertSlot = db.prepare('INSERT INTO slots (name, store, machine, ip, data_path, meta_path) VALUES (?, ?, ?, ?, ?, ?)');
  const updateSlot = db.prepare('UPDATE slots SET ip = ?, data_path = ?, meta_path = ? WHERE name = ?');

  // Removals first so that a freed address or path can be reused by an addition in the same file.
  const order = { remove: 0, update: 1, add: 2, 'move-master': 3, keep: 4 } as const;
  const sorted = [...changes].sort((a, b) => order[a.action] - order[b.action] || (a.kind === 'machine' ? -1 : 1));
  for (const change of sorted) {
    const event = { kind: `cluster.${change.kind}-${change.action}`, reason: `cluster apply (${source}): ${change.detail}` };
    if (change.kind === 'machine') {
      const m = machines.get(change.name);
      if (change.action === 'add' && m) insertMachine.run(m.name, m.address, JSON.stringify(m.disks), m.slots, m.rack ?? '', at, at);
      if (change.action === 'update' && m) updateMachine.run(m.address, JSON.stringify(m.disks), m.slots, m.rack ?? '', m.name);
      if (change.action === 'remove') db.prepare('DELETE FROM machines WHERE name = ?').run(change.name);
      repo.insertEvent({ ...event, machine: change.name }, at);
      continue;
    }
    const s = stores.get(change.name);
    if (change.action === 'remove') {
      const row = repo.getStore(change.name);
      db.prepare('DELETE FROM stores WHERE name = ?').run(change.name);
      db.prepare('DELETE FROM slots WHERE store = ?').run(change.name);
      repo.insertEvent({ ...event, store: change.name, epoch: row?.epoch }, at);
      continue;
    }
    if (!s) continue;
    if (change.action === 'add') {
      insertStore.run(s.name, s.service_ip, masterSlotName(s), replicaSlotName(s), at, at);
      for (const slot of s.slots) insertSlot.run(slotName(s, slot), s.name, slot.machine, slot.ip, slot.data_path, slot.meta_path);
      repo.insertEvent({ ...event, store: s.name, epoch: 1 }, at);
    } else if (change.action === 'update') {
      updateStore.run(s.service_ip, at, s.name);
      for (const slot of s.slots) updateSlot.run(slot.ip, slot.data_path, slot.meta_path, slotName(s, slot));
      repo.insertEvent({ ...event, store: s.name, epoch: repo.getStore(s.name)?.epoch }, at);
    } else if (change.action === 'move-master') {
      const row = repo.getStore(s.name)!;
      repo.setMaster(s.name, masterSlotName(s), row.epoch, `cluster apply (${source}) names ${s.master} as master`);
    }
  }
}
