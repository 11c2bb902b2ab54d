// The cluster file the database describes now: machines (not the retired ones that hold no slot), stores with the machine that is
// master *now* (after switchovers and failovers the file on disk names old masters) and their slots (a slot that a
// re-replication created is named, as its name is not STORE-MACHINE), the cleanup and event-retention sections.
// Applying it changes nothing.
import { formatCluster, type ClusterSpec } from '@slotctl/shared/cluster-spec';
import { CLEANUP_SETTING } from '../cleanup/config.js';
import { EVENTS_SETTING } from '../db/retention.js';
import type { Storage } from '../db/storage.js';

export function exportCluster(storage: Storage, now = new Date()): string {
  const machines = storage.machines.list();
  const slots = new Map(storage.slots.list().map((s) => [s.name, s]));
  // a retired machine stays in the file while a store still has a slot there (until its re-replication is done)
  const holding = new Set([...slots.values()].map((s) => s.machine));
  const retired = machines.filter((m) => m.retiredAt && !holding.has(m.name));
  const spec: Record<string, unknown> = {
    machines: machines
      .filter((m) => !retired.includes(m))
      .map((m) => ({
        name: m.name,
        address: m.address,
        slots: m.slotCapacity,
        ...(m.rack ? { rack: m.rack } : {}),
        disks: m.disks.map((d) => ({ name: d.name, path: d.path, class: d.class, ...(d.size !== undefined ? { size: d.size } : {}) })),
        ...(m.slotIps.length ? { slot_ips: m.slotIps } : {}),
      })),
    stores: storage.stores.list().map((st) => {
      const master = slots.get(st.masterSlot)!;
      return {
        name: st.name,
        service_ip: st.serviceIp,
        master: master.machine,
        slots: [st.masterSlot, st.replicaSlot].map((name) => {
          const s = slots.get(name)!;
          return { ...(name !== `${st.name}-${s.machine}` ? { name } : {}), machine: s.machine, ip: s.ip, data_path: s.dataPath, meta_path: s.metaPath };
        }),
        ...(st.growthBytes ? { expected_growth: st.growthBytes } : {}),
      };
    }),
  };
  const cleanup = storage.settings.get(CLEANUP_SETTING);
  if (cleanup) spec.cleanup = JSON.parse(cleanup);
  const events = storage.settings.get(EVENTS_SETTING);
  if (events) spec.events = JSON.parse(events);
  const comment = [
    `The cluster as the coordinator's database described it at ${now.toISOString()} (slotctl cluster export).`,
    'Masters are the current ones. Applying this file changes nothing.',
    ...(retired.length ? [`Retired machines (kept in the database, left out here): ${retired.map((m) => m.name).join(', ')}.`] : []),
  ].join('\n');
  return formatCluster(spec as ClusterSpec, comment);
}
