// Pure: how many full copies (seeds) run at once. A seed reads a whole store from its master's disks and writes it on
// the new replica's, for minutes to hours; unbounded (a retire starts one per store of the lost machine), they would
// starve the masters' own I/O. A re-replication or a replica move holds a seed slot from its create to its switch
// (re-replication: to its end); one waiting for a slot waits in preflight and says which limit holds it.
import type { OperationRow } from '../db/rows.js';

export interface SeedLimits {
  /** Seeds at once, cluster-wide. */
  cluster: number;
  /** Seeds at once that read from, or write to, one machine. */
  perMachine: number;
}

export const DEFAULT_SEED_LIMITS: SeedLimits = { cluster: 2, perMachine: 1 };

/** Steps in which an operation copies (or compares what it copied): it holds a seed slot. */
const COPYING: Record<string, readonly string[]> = {
  rereplicate: ['create', 'seed', 'verify'],
  'move-replica': ['create', 'seed', 'verify'],
};

interface SeedMachines {
  masterMachine: string;
  targetMachine: string;
}

/** The running operations that hold a seed slot now. */
export function seedsRunning(running: readonly OperationRow[]): OperationRow[] {
  return running.filter((o) => COPYING[o.kind]?.includes(o.step));
}

/** Why `self` cannot start its seed now ('' when it can): the cluster-wide limit, or a machine's. */
export function seedSlotProblem(self: SeedMachines & { id: string }, running: readonly OperationRow[], limits: SeedLimits): string {
  const others = seedsRunning(running).filter((o) => o.id !== self.id);
  if (others.length >= limits.cluster) return `no free seed slot (${others.length} running, limit ${limits.cluster}: --max-seeds): ${others.map((o) => o.id).join(', ')}`;
  for (const machine of new Set([self.masterMachine, self.targetMachine])) {
    const there = others.filter((o) => {
      const p = o.params as unknown as SeedMachines;
      return p.masterMachine === machine || p.targetMachine === machine;
    });
    if (there.length >= limits.perMachine) return `no free seed slot on ${machine} (${there.length} copying from or to it, limit ${limits.perMachine}: --max-seeds-per-machine): ${there.map((o) => o.id).join(', ')}`;
  }
  return '';
}
