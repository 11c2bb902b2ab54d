// Pure: `slotctl machine evacuate M` — what leaves a live machine so that it holds nothing: first every master on it
// switched over to its replica (the store keeps both copies), then every replica on it (the old masters among them)
// moved to a peer chosen as a re-replication's would be (fan-out kept near target, racks apart, slots even). Each
// store keeps two copies throughout: a switchover swaps roles, a move seeds the new replica before the old one goes.
import { ValidationError } from '@slotctl/shared/base';
import { chooseReplicaMachine, type ReplicaMove } from './grow.js';
import { byName, cloneCluster, summarize, type MachineSummary, type PlanCluster, type SlotSize } from './model.js';
import type { Move } from './rebalance.js';

export interface EvacuatePlan {
  machine: string;
  /** Masters switched off the machine (each to its replica's machine). */
  switchovers: Move[];
  /** Then every replica on the machine moved to a peer. */
  replicaMoves: ReplicaMove[];
  /** Stores the plan cannot take off the machine, and why. */
  unplaced: { store: string; reason: string }[];
  machines: MachineSummary[];
  sentence: string;
}

/**
 * `mayHold(store, machine)`: why a machine's disks cannot hold the store's copy (the coordinator's measured room
 * check), undefined when they can; such machines are not chosen.
 */
export function planEvacuate(cluster: PlanCluster, name: string, options: { size?: SlotSize; fanOut?: number; busy?: ReadonlySet<string>; mayHold?: (store: string, machine: string) => string | undefined; placed?: (store: string, machine: string) => void } = {}): EvacuatePlan {
  const machine = cluster.machines.find((m) => m.name === name);
  if (!machine) throw new ValidationError(`machine "${name}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  const work = cloneCluster(cluster);
  // nothing is placed on it: drained for masters, and excluded below for replicas
  for (const m of work.machines) if (m.name === name) m.drained = true;
  const down = new Set(work.machines.filter((m) => m.down).map((m) => m.name));
  const drained = work.machines.filter((m) => m.drained).map((m) => m.name);
  const switchovers: Move[] = [];
  const unplaced: EvacuatePlan['unplaced'] = [];
  const stores = [...work.stores].sort((a, b) => byName(a.name, b.name));
  for (const s of stores.filter((x) => x.master === name)) {
    if (options.busy?.has(s.name)) unplaced.push({ store: s.name, reason: 'busy with another operation or still being seeded: evacuate again once it is done' });
    else if (down.has(s.replica)) unplaced.push({ store: s.name, reason: `its replica's machine ${s.replica} is down: the master cannot be switched over to it` });
    else if (drained.includes(s.replica)) unplaced.push({ store: s.name, reason: `its replica's machine ${s.replica} is drained: no master may be placed there (slotctl machine undrain ${s.replica}, or move the replica first)` });
    else {
      switchovers.push({ store: s.name, from: name, to: s.replica, reason: `${name} is being evacuated: ${s.replica} holds the replica` });
      s.master = s.replica;
      s.replica = name;
    }
  }
  const replicaMoves: ReplicaMove[] = [];
  for (const s of stores.filter((x) => x.replica === name && !unplaced.some((u) => u.store === x.name))) {
    if (options.busy?.has(s.name)) {
      unplaced.push({ store: s.name, reason: 'busy with another operation or still being seeded: evacuate again once it is done' });
      continue;
    }
    // never in the master's rack (slotctl store move-replica refuses it): a store's two slots stand in two racks
    const rack = work.machines.find((m) => m.name === s.master)?.rack ?? '';
    const sameRack = rack ? work.machines.filter((m) => m.rack === rack).map((m) => m.name) : [];
    const noRoom = new Map<string, string>();
    for (const m of work.machines) {
      const why = m.name === name || m.down ? undefined : options.mayHold?.(s.name, m.name);
      if (why) noRoom.set(m.name, why);
    }
    const choice = chooseReplicaMachine(work, s.master, { exclude: new Set([name, ...drained, ...sameRack, ...noRoom.keys()]), ...(options.size ? { size: options.size } : {}), ...(options.fanOut ? { fanOut: options.fanOut } : {}) });
    if (!choice) {
      unplaced.push({ store: s.name, reason: `no up, undrained machine other than ${s.master} and ${name}${rack ? ` outside rack ${rack}` : ''} has a free slot${noRoom.size ? ` and room on its disks (${[...noRoom.values()].join('; ')})` : ''}` });
      continue;
    }
    replicaMoves.push({ store: s.name, from: name, to: choice.machine, reason: choice.reason });
    options.placed?.(s.name, choice.machine);
    s.replica = choice.machine;
  }
  const left = unplaced.length;
  const sentence = `${name} would hold ${left ? `${left} slot(s) still` : 'nothing'}: ${switchovers.length} switchover(s), then ${replicaMoves.length} replica move(s)${left ? `; ${left} store(s) cannot leave it now` : ''}`;
  return { machine: name, switchovers, replicaMoves, unplaced, machines: summarize(work), sentence };
}
