// Pure: the cluster as the planner sees it (machines with capacity, racks and disks; stores as a master machine and a
// replica machine), and the measures every plan is judged by: masters and replicas per machine, and fan-out (how
// many distinct peers hold the replicas of a machine's masters; losing the machine spreads its load over them).

export type DiskClass = 'ssd' | 'hdd' | 'nvme';

export interface PlanDisk {
  name: string;
  class: DiskClass;
  /** Infinity when the description gives no size. */
  capacityBytes: number;
  /** Reserved by the slots already on it. */
  usedBytes: number;
}

export interface PlanMachine {
  name: string;
  /** How many slots the machine may run (8–18 in practice). */
  slots: number;
  /** '' when the description names no rack. */
  rack: string;
  /** Gets no master; may hold replicas. */
  drained: boolean;
  /** Down now: gets nothing, and its masters cannot be switched over. */
  down: boolean;
  disks: PlanDisk[];
}

export interface PlanStore {
  name: string;
  master: string;
  replica: string;
}

export interface PlanCluster {
  machines: PlanMachine[];
  stores: PlanStore[];
}

export interface SlotSize {
  /** What one slot's data partition may grow to (FastMail kept ≤ 300 GB). */
  dataBytes: number;
  metaBytes: number;
}

export const DEFAULT_SLOT_SIZE: SlotSize = { dataBytes: 300e9, metaBytes: 30e9 };
/** Replicas of one machine's masters go to this many peers (or every other machine when there are fewer). */
export const DEFAULT_FAN_OUT = 5;

export function targetFanOut(machineCount: number, wanted = DEFAULT_FAN_OUT): number {
  return Math.max(0, Math.min(wanted, machineCount - 1));
}

export interface MachineCounts {
  masters: number;
  replicas: number;
  /** Distinct machines holding the replicas of this machine's masters. */
  peers: Set<string>;
}

export function countByMachine(cluster: PlanCluster): Map<string, MachineCounts> {
  const out = new Map<string, MachineCounts>();
  for (const m of cluster.machines) out.set(m.name, { masters: 0, replicas: 0, peers: new Set() });
  const get = (name: string) => {
    let c = out.get(name);
    if (!c) out.set(name, (c = { masters: 0, replicas: 0, peers: new Set() }));
    return c;
  };
  for (const s of cluster.stores) {
    const master = get(s.master);
    master.masters++;
    master.peers.add(s.replica);
    get(s.replica).replicas++;
  }
  return out;
}

/** Data disks are the hdd ones when the machine has any (bulk mail), meta disks the ssd/nvme ones (indexes). */
export function diskRoles(disks: readonly PlanDisk[]): { data: PlanDisk[]; meta: PlanDisk[] } {
  const fast = disks.filter((d) => d.class !== 'hdd');
  const slow = disks.filter((d) => d.class === 'hdd');
  return { data: slow.length ? slow : fast, meta: fast.length ? fast : slow };
}

/**
 * Reserves one slot's partitions on a machine's disks, the freest first; undefined when they do not fit. Mutates the
 * disks' usedBytes. A machine that declares no disks is limited by its slot count only.
 */
export function reserveSlot(machine: PlanMachine, size: SlotSize): { data: string; meta: string } | undefined {
  if (machine.disks.length === 0) return { data: '', meta: '' };
  const { data, meta } = diskRoles(machine.disks);
  const free = (d: PlanDisk) => d.capacityBytes - d.usedBytes;
  const pick = (list: PlanDisk[], bytes: number) =>
    list.filter((d) => free(d) >= bytes).sort((a, b) => free(b) - free(a) || (a.name < b.name ? -1 : 1))[0];
  const dataDisk = pick(data, size.dataBytes);
  if (!dataDisk) return undefined;
  dataDisk.usedBytes += size.dataBytes;
  const metaDisk = pick(meta, size.metaBytes);
  if (!metaDisk) {
    dataDisk.usedBytes -= size.dataBytes;
    return undefined;
  }
  metaDisk.usedBytes += size.metaBytes;
  return { data: dataDisk.name, meta: metaDisk.name };
}

/** How many more slots fit on a machine: its slot count, then its disks. */
export function freeSlots(machine: PlanMachine, used: number, size: SlotSize): number {
  if (machine.down) return 0;
  const bySlots = Math.max(0, machine.slots - used);
  if (machine.disks.length === 0) return bySlots;
  const trial: PlanMachine = { ...machine, disks: machine.disks.map((d) => ({ ...d })) };
  let n = 0;
  while (n < bySlots && reserveSlot(trial, size)) n++;
  return n;
}

export function cloneCluster(cluster: PlanCluster): PlanCluster {
  return {
    machines: cluster.machines.map((m) => ({ ...m, disks: m.disks.map((d) => ({ ...d })) })),
    stores: cluster.stores.map((s) => ({ ...s })),
  };
}

export interface MachineSummary {
  machine: string;
  rack: string;
  slots: number;
  masters: number;
  replicas: number;
  /** Distinct peers holding replicas of its masters. */
  fanOut: number;
  peers: string[];
  drained: boolean;
  down: boolean;
}

export function summarize(cluster: PlanCluster): MachineSummary[] {
  const counts = countByMachine(cluster);
  return cluster.machines.map((m) => {
    const c = counts.get(m.name)!;
    return {
      machine: m.name,
      rack: m.rack,
      slots: m.slots,
      masters: c.masters,
      replicas: c.replicas,
      fanOut: c.peers.size,
      peers: [...c.peers].sort(),
      drained: m.drained,
      down: m.down,
    };
  });
}

export const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
