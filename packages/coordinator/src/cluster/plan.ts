// Pure: checks a parsed cluster description against itself and against the database, and lists the changes that
// applying it would make. No I/O; the caller writes the plan in one transaction.
import type { MachineRow, SlotRow, StoreRow } from '../db/rows.js';
import { formatPath, slotName, type ClusterSpec, type PathKey, type Problem, type ProblemCode, type StoreSpec } from '@slotctl/shared/cluster-spec';

export interface CurrentCluster {
  machines: readonly MachineRow[];
  stores: readonly StoreRow[];
  slots: readonly SlotRow[];
  /** Stores with an operation under way. */
  busy: ReadonlySet<string>;
}

export interface Change {
  action: 'add' | 'update' | 'remove' | 'move-master' | 'keep';
  kind: 'machine' | 'store' | 'settings';
  name: string;
  detail: string;
}

export interface ClusterPlan {
  problems: Problem[];
  changes: Change[];
}

type Locate = (path: readonly PathKey[]) => { line: number; entry: string };

export function planCluster(spec: ClusterSpec, current: CurrentCluster, locate: Locate, prune: boolean): ClusterPlan {
  const problems: Problem[] = [];
  const problem = (code: ProblemCode, path: PathKey[], message: string) =>
    problems.push({ code, path: formatPath(path), ...locate(path), message });

  checkUnique(spec, problem);
  const machineNames = new Set(spec.machines.map((m) => m.name));
  const slotsByMachine = new Map<string, { path: PathKey[]; data: string; meta: string; slot: string }[]>();

  spec.stores.forEach((store, si) => {
    const [a, b] = store.slots;
    if (a && b && a.machine === b.machine) {
      problem('SameMachine', ['stores', si, 'slots', 1, 'machine'], `store ${store.name}: both slots are on machine ${a.machine}; a store needs two different machines`);
    }
    if (!store.slots.some((slot) => slot.machine === store.master)) {
      problem('UnknownMaster', ['stores', si, 'master'], `store ${store.name}: master "${store.master}" is not the machine of either of its slots`);
    }
    store.slots.forEach((slot, ki) => {
      const path: PathKey[] = ['stores', si, 'slots', ki];
      if (!machineNames.has(slot.machine)) {
        problem('UnknownMachine', [...path, 'machine'], `store ${store.name}: slot on unknown machine "${slot.machine}"; declare it under machines`);
      }
      if (slot.data_path === slot.meta_path) {
        problem('SharedPartition', [...path, 'meta_path'], `slot ${slotName(store, slot)}: data_path and meta_path are the same directory`);
      }
      const list = slotsByMachine.get(slot.machine) ?? [];
      list.push({ path, data: slot.data_path, meta: slot.meta_path, slot: slotName(store, slot) });
      slotsByMachine.set(slot.machine, list);
    });
  });
  for (const [machine, slots] of slotsByMachine) checkPartitions(machine, slots, problem);

  const changes: Change[] = [];
  diffMachines(spec, current, prune, changes, problem);
  diffStores(spec, current, prune, changes, problem);
  return { problems, changes };
}

type Report = (code: ProblemCode, path: PathKey[], message: string) => void;

function checkUnique(spec: ClusterSpec, problem: Report): void {
  const names = new Map<string, string>();
  const addresses = new Map<string, string>();
  // Names are unique per kind (a machine and a store may share one); addresses across everything.
  const claim = (map: Map<string, string>, kind: string, value: string, owner: string, path: PathKey[], code: ProblemCode, what: string) => {
    const first = map.get(`${kind}:${value}`);
    if (first !== undefined) problem(code, path, `${what} "${value}" of ${owner} is already used by ${first}`);
    else map.set(`${kind}:${value}`, owner);
  };
  spec.machines.forEach((m, i) => {
    claim(names, 'machine', m.name, `machine ${m.name}`, ['machines', i, 'name'], 'DuplicateName', 'machine name');
    claim(addresses, 'ip', m.address, `machine ${m.name}`, ['machines', i, 'address'], 'DuplicateAddress', 'address');
    const disks = new Set<string>();
    m.disks.forEach((d, di) => {
      if (disks.has(d.name)) problem('DuplicateName', ['machines', i, 'disks', di, 'name'], `machine ${m.name}: disk name "${d.name}" appears twice`);
      disks.add(d.name);
    });
  });
  spec.stores.forEach((s, i) => {
    claim(names, 'store', s.name, `store ${s.name}`, ['stores', i, 'name'], 'DuplicateName', 'store name');
    claim(addresses, 'ip', s.service_ip, `store ${s.name}`, ['stores', i, 'service_ip'], 'DuplicateAddress', 'address');
    s.slots.forEach((slot, k) => {
      const name = slotName(s, slot);
      claim(names, 'slot', name, `a slot of store ${s.name}`, ['stores', i, 'slots', k], 'DuplicateName', 'slot name');
      claim(addresses, 'ip', slot.ip, `slot ${name}`, ['stores', i, 'slots', k, 'ip'], 'DuplicateAddress', 'address');
    });
  });
}

function checkPartitions(machine: string, slots: { path: PathKey[]; data: string; meta: string; slot: string }[], problem: Report): void {
  const used = new Map<string, string>();
  const inside = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  for (const slot of slots) {
    for (const [field, dir] of [['data_path', slot.data], ['meta_path', slot.meta]] as const) {
      for (const [other, owner] of used) {
        if (inside(dir, other)) {
          problem('SharedPartition', [...slot.path, field], `machine ${machine}: ${field} ${dir} of slot ${slot.slot} overlaps ${other} of slot ${owner}`);
        }
      }
    }
    used.set(slot.data, slot.slot);
    used.set(slot.meta, slot.slot);
  }
}

function diffMachines(spec: ClusterSpec, current: CurrentCluster, prune: boolean, changes: Change[], problem: Report): void {
  const existing = new Map(current.machines.map((m) => [m.name, m]));
  for (const m of spec.machines) {
    const before = existing.get(m.name);
    if (!before) {
      changes.push({ action: 'add', kind: 'machine', name: m.name, detail: `address ${m.address}, ${m.disks.length} disk(s)` });
      continue;
    }
    const what: string[] = [];
    if (before.address !== m.address) what.push(`address ${before.address} -> ${m.address}`);
    if (JSON.stringify(before.disks) !== JSON.stringify(m.disks)) what.push('disks');
    if (before.slotCapacity !== m.slots) what.push(`slots ${before.slotCapacity} -> ${m.slots}`);
    if (before.rack !== (m.rack ?? '')) what.push(`rack ${before.rack || '-'} -> ${m.rack || '-'}`);
    if (JSON.stringify(before.slotIps) !== JSON.stringify(m.slot_ips)) what.push(`slot_ips [${before.slotIps.join(', ')}] -> [${m.slot_ips.join(', ')}]`);
    if (what.length) changes.push({ action: 'update', kind: 'machine', name: m.name, detail: what.join(', ') });
  }
  const named = new Set(spec.machines.map((m) => m.name));
  const slotMachinesKept = new Set<string>();
  const storesInFile = new Set(spec.stores.map((s) => s.name));
  for (const slot of current.slots) if (!prune || storesInFile.has(slot.store)) slotMachinesKept.add(slot.machine);
  for (const s of spec.stores) for (const slot of s.slots) slotMachinesKept.add(slot.machine);
  for (const m of current.machines) {
    if (named.has(m.name)) continue;
    if (!prune) {
      changes.push({ action: 'keep', kind: 'machine', name: m.name, detail: 'not in the file; kept (use --prune to remove)' });
    } else if (slotMachinesKept.has(m.name)) {
      problem('MachineInUse', ['machines'], `machine ${m.name} is not in the file but still holds slots of stores that stay; move or remove those stores first`);
    } else {
      changes.push({ action: 'remove', kind: 'machine', name: m.name, detail: 'not in the file' });
    }
  }
}

function diffStores(spec: ClusterSpec, current: CurrentCluster, prune: boolean, changes: Change[], problem: Report): void {
  const stores = new Map(current.stores.map((s) => [s.name, s]));
  const slots = new Map(current.slots.map((s) => [s.name, s]));
  spec.stores.forEach((store, si) => {
    const before = stores.get(store.name);
    const master = masterSlotName(store);
    if (!before) {
      changes.push({ action: 'add', kind: 'store', name: store.name, detail: `master ${master}, replica ${replicaSlotName(store)}, service ${store.service_ip}` });
      return;
    }
    const what: string[] = [];
    if (before.serviceIp !== store.service_ip) what.push(`service_ip ${before.serviceIp} -> ${store.service_ip}`);
    if ((before.growthBytes ?? 0) !== (store.expected_growth ?? 0)) what.push(`expected_growth ${before.growthBytes ?? 0} -> ${store.expected_growth ?? 0} bytes`);
    const beforeSlots = new Set([before.masterSlot, before.replicaSlot]);
    store.slots.forEach((slot, ki) => {
      const name = slotName(store, slot);
      const old = slots.get(name);
      if (!old || !beforeSlots.has(name)) {
        problem('SlotMoved', ['stores', si, 'slots', ki], `store ${store.name}: slot ${name} is not one of its slots (${[...beforeSlots].join(', ')}); apply cannot replace a store's slots`);
        return;
      }
      if (old.machine !== slot.machine) {
        problem('SlotMoved', ['stores', si, 'slots', ki, 'machine'], `slot ${name} is on machine ${old.machine}; apply cannot move a slot to ${slot.machine}`);
      }
      if (old.ip !== slot.ip) what.push(`${name} ip ${old.ip} -> ${slot.ip}`);
      if (old.dataPath !== slot.data_path) what.push(`${name} data_path`);
      if (old.metaPath !== slot.meta_path) what.push(`${name} meta_path`);
    });
    if (what.length) changes.push({ action: 'update', kind: 'store', name: store.name, detail: what.join(', ') });
    if (master !== before.masterSlot) {
      if (current.busy.has(store.name)) {
        problem('StoreBusy', ['stores', si, 'master'], `store ${store.name} has an operation under way; its master cannot change now (wait for it, or cancel it)`);
      } else if (current.machines.find((m) => m.name === slots.get(master)?.machine)?.drained) {
        const m = slots.get(master)!.machine;
        problem('MachineDrained', ['stores', si, 'master'], `machine ${m} is drained: no master may be placed on it (slotctl machine undrain ${m} first)`);
      } else {
        changes.push({
          action: 'move-master',
          kind: 'store',
          name: store.name,
          detail: `master ${before.masterSlot} -> ${master}, epoch ${before.epoch} -> ${before.epoch + 1} (no replay: the row changes, agents follow)`,
        });
      }
    }
  });
  const named = new Set(spec.stores.map((s) => s.name));
  for (const s of current.stores) {
    if (named.has(s.name)) continue;
    if (!prune) {
      changes.push({ action: 'keep', kind: 'store', name: s.name, detail: 'not in the file; kept (use --prune to remove)' });
    } else if (current.busy.has(s.name)) {
      problem('StoreBusy', ['stores'], `store ${s.name} is not in the file but has an operation under way; it cannot be removed now`);
    } else {
      changes.push({ action: 'remove', kind: 'store', name: s.name, detail: 'not in the file (mail on disk is not touched)' });
    }
  }
}

export function masterSlotName(store: StoreSpec): string {
  const slot = store.slots.find((s) => s.machine === store.master) ?? store.slots[0]!;
  return slotName(store, slot);
}

export function replicaSlotName(store: StoreSpec): string {
  const slot = store.slots.find((s) => s.machine !== store.master) ?? store.slots[1]!;
  return slotName(store, slot);
}
