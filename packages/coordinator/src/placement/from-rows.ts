// Pure: the planner's view of the database rows. Retired machines are left out; a slot's partitions count against
// the disk whose path holds them (a slot is reserved at its full size: the planner plans for growth, not today's use).
import type { MachineRow, SlotRow, StoreRow } from '../db/rows.js';
import { DEFAULT_SLOT_SIZE, type DiskClass, type PlanCluster, type SlotSize } from '@slotctl/planner';

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

export function clusterFromRows(rows: { machines: readonly MachineRow[]; stores: readonly StoreRow[]; slots: readonly SlotRow[] }, size: SlotSize = DEFAULT_SLOT_SIZE): PlanCluster {
  const slots = new Map(rows.slots.map((s) => [s.name, s]));
  const live = rows.machines.filter((m) => !m.retiredAt);
  const machines = live.map((m) => {
    const mine = rows.slots.filter((s) => s.machine === m.name);
    return {
      name: m.name,
      slots: m.slotCapacity,
      rack: m.rack,
      drained: m.drained,
      down: m.state === 'down',
      disks: m.disks.map((d) => ({
        name: d.name,
        class: (['ssd', 'hdd', 'nvme'].includes(d.class) ? d.class : 'hdd') as DiskClass,
        capacityBytes: d.size ?? Infinity,
        usedBytes: mine.reduce((a, s) => a + (inside(s.dataPath, d.path) ? size.dataBytes : 0) + (inside(s.metaPath, d.path) ? size.metaBytes : 0), 0),
      })),
    };
  });
  const stores = rows.stores.map((s) => ({ name: s.name, master: slots.get(s.masterSlot)?.machine ?? '', replica: slots.get(s.replicaSlot)?.machine ?? '' }));
  return { machines, stores };
}
