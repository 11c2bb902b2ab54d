// `slotctl cluster apply`: parse, check, plan and write, all inside one IMMEDIATE transaction so the checks see the
// same database the writes change. Any problem → nothing written.
import { nowIso, type MachineInput, type SlotInput } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { CLEANUP_SETTING } from '../cleanup/config.js';
import { EVENTS_SETTING } from '../db/retention.js';
import { masterSlotName, planCluster, replicaSlotName, type Change } from './plan.js';
import { parseCluster, slotName, type ClusterSpec, type MachineSpec, type Problem, type StoreSpec } from '@slotctl/shared/cluster-spec';

export interface ApplyOutcome {
  ok: boolean;
  applied: boolean;
  problems: Problem[];
  changes: Change[];
  /** Machines whose desired state may have changed. */
  touchedMachines: string[];
}

export function applyCluster(storage: Storage, text: string, options: { dryRun: boolean; prune: boolean; source: string }): ApplyOutcome {
  const parsed = parseCluster(text);
  if (!parsed.spec) return { ok: false, applied: false, problems: parsed.problems, changes: [], touchedMachines: [] };
  const spec = parsed.spec;

  return storage.transaction((): ApplyOutcome => {
    const current = { machines: storage.machines.list(), stores: storage.stores.list(), slots: storage.slots.list(), busy: storage.operations.busyStores() };
    const plan = planCluster(spec, current, parsed.locate, options.prune);
    // the settings sections (cleanup policy, event retention): the file's section, or the defaults when it has none
    const settings = [
      { key: CLEANUP_SETTING, value: spec.cleanup ? JSON.stringify(spec.cleanup) : undefined, what: 'cleanup policy' },
      { key: EVENTS_SETTING, value: spec.events ? JSON.stringify(spec.events) : undefined, what: 'event retention' },
    ].filter((setting) => (storage.settings.get(setting.key) ?? undefined) !== setting.value);
    for (const setting of settings) {
      plan.changes.push({ action: 'update', kind: 'settings', name: setting.key, detail: setting.value ? `${setting.what} ${setting.value}` : `${setting.what} back to the defaults` });
    }
    if (plan.problems.length) return { ok: false, applied: false, problems: plan.problems, changes: plan.changes, touchedMachines: [] };
    const effective = plan.changes.filter((c) => c.action !== 'keep');
    if (options.dryRun || effective.length === 0) {
      return { ok: true, applied: false, problems: [], changes: plan.changes, touchedMachines: [] };
    }
    write(storage, spec, effective, options.source);
    for (const setting of settings) {
      storage.settings.set(setting.key, setting.value);
      const change = effective.find((c) => c.kind === 'settings' && c.name === setting.key)!;
      storage.events.append({ kind: 'cluster.settings-update', reason: `cluster apply (${options.source}): ${change.detail}` });
    }
    const touched = new Set<string>();
    for (const slot of current.slots) touched.add(slot.machine);
    for (const store of spec.stores) for (const slot of store.slots) touched.add(slot.machine);
    return { ok: true, applied: true, problems: [], changes: plan.changes, touchedMachines: [...touched] };
  }, { immediate: true });
}

function write(storage: Storage, spec: ClusterSpec, changes: Change[], source: string): void {
  const at = nowIso();
  const machines = new Map(spec.machines.map((m) => [m.name, m]));
  const stores = new Map(spec.stores.map((s) => [s.name, s]));

  // Removals first so that a freed address or path can be reused by an addition in the same file.
  const order = { remove: 0, update: 1, add: 2, 'move-master': 3, keep: 4 } as const;
  const sorted = [...changes].sort((a, b) => order[a.action] - order[b.action] || (a.kind === 'machine' ? -1 : 1));
  for (const change of sorted) {
    if (change.kind === 'settings') continue; // written by applyCluster itself (a store may be named like a setting)
    const event = { kind: `cluster.${change.kind}-${change.action}`, reason: `cluster apply (${source}): ${change.detail}` };
    if (change.kind === 'machine') {
      const m = machines.get(change.name);
      if (change.action === 'add' && m) storage.machines.add(machineInput(m), at);
      if (change.action === 'update' && m) storage.machines.update(machineInput(m));
      if (change.action === 'remove') storage.machines.remove(change.name);
      storage.events.append({ ...event, machine: change.name }, at);
      continue;
    }
    const s = stores.get(change.name);
    if (change.action === 'remove') {
      const row = storage.stores.get(change.name);
      storage.stores.remove(change.name);
      storage.events.append({ ...event, store: change.name, epoch: row?.epoch }, at);
      continue;
    }
    if (!s) continue;
    if (change.action === 'add') {
      storage.stores.add({ name: s.name, serviceIp: s.service_ip, masterSlot: masterSlotName(s), replicaSlot: replicaSlotName(s), growthBytes: s.expected_growth ?? 0, slots: slotInputs(s) }, at);
      storage.events.append({ ...event, store: s.name, epoch: 1 }, at);
    } else if (change.action === 'update') {
      storage.stores.update({ name: s.name, serviceIp: s.service_ip, growthBytes: s.expected_growth ?? 0, slots: slotInputs(s) }, at);
      storage.events.append({ ...event, store: s.name, epoch: storage.stores.get(s.name)?.epoch }, at);
    } else if (change.action === 'move-master') {
      const row = storage.stores.get(s.name)!;
      storage.stores.setMaster(s.name, masterSlotName(s), row.epoch, `cluster apply (${source}) names ${s.master} as master`);
    }
  }
}

function machineInput(m: MachineSpec): MachineInput {
  return { name: m.name, address: m.address, disks: m.disks, slotCapacity: m.slots, rack: m.rack ?? '', slotIps: m.slot_ips };
}

function slotInputs(s: StoreSpec): SlotInput[] {
  return s.slots.map((slot) => ({ name: slotName(s, slot), machine: slot.machine, ip: slot.ip, dataPath: slot.data_path, metaPath: slot.meta_path }));
}
