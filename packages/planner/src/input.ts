// The planner's inputs that arrive from outside (a new machine over the Admin API, a cluster file for an offline
// layout): validated here before any of it is used.
import { z } from 'zod';
import { ValidationError, nameProblem, parseSize } from '@slotctl/shared/base';
import type { ClusterSpec } from '@slotctl/shared/cluster-spec';
import type { PlanCluster, PlanMachine } from './model.js';

const name = z.string().refine((v) => !nameProblem(v), { message: 'not a valid name (letters, digits, ".", "_", "-")' });

export const newMachineSchema = z.strictObject({
  name,
  slots: z.number().int().min(1).max(64).default(18),
  rack: z.string().default(''),
  disks: z
    .array(z.strictObject({ name, class: z.enum(['ssd', 'hdd', 'nvme']).default('hdd'), size: z.union([z.string(), z.number()]).optional() }))
    .default([]),
});

export function parseNewMachine(json: string): PlanMachine {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ValidationError('the new machine is not valid JSON');
  }
  const result = newMachineSchema.safeParse(raw);
  if (!result.success) throw new ValidationError(`the new machine: ${result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  const m = result.data;
  return {
    name: m.name,
    slots: m.slots,
    rack: m.rack,
    drained: false,
    down: false,
    disks: m.disks.map((d) => ({ name: d.name, class: d.class, capacityBytes: d.size === undefined ? Infinity : parseSize(d.size, `disk ${d.name} size`), usedBytes: 0 })),
  };
}

/** A cluster file as the planner sees it (offline: no machine is down or drained). */
export function clusterFromSpec(spec: ClusterSpec, size: { dataBytes: number; metaBytes: number }): PlanCluster {
  const inside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);
  return {
    machines: spec.machines.map((m) => {
      const slots = spec.stores.flatMap((s) => s.slots).filter((s) => s.machine === m.name);
      return {
        name: m.name,
        slots: m.slots,
        rack: m.rack ?? '',
        drained: false,
        down: false,
        disks: m.disks.map((d) => ({
          name: d.name,
          class: d.class,
          capacityBytes: d.size ?? Infinity,
          usedBytes: slots.reduce((a, s) => a + (inside(s.data_path, d.path) ? size.dataBytes : 0) + (inside(s.meta_path, d.path) ? size.metaBytes : 0), 0),
        })),
      };
    }),
    stores: spec.stores.map((s) => ({ name: s.name, master: s.master, replica: s.slots.find((x) => x.machine !== s.master)?.machine ?? '' })),
  };
}
