// Pure: machines coming and going. `planAddMachine`: what a new machine should hold so that balance and fan-out
// improve (new stores where peers have free slots, else replicas moved to it from the fullest machines, then the
// switchovers that give it its share of masters). `planReReplication`: for each store a retired machine leaves
// without a replica, the peer that gets the new replica slot.
import { ValidationError } from '@slotctl/shared/base';
import { nextStoreNames, planLayout, type PlannedStore } from './layout.js';
import { DEFAULT_FAN_OUT, DEFAULT_SLOT_SIZE, byName, cloneCluster, countByMachine, freeSlots, targetFanOut, summarize, type MachineSummary, type PlanCluster, type PlanMachine, type SlotSize } from './model.js';
import { planRebalance, type Move } from './rebalance.js';

export interface ReplicaMove {
  store: string;
  /** The machine whose replica slot is replaced (kept until the operator removes its files). */
  from: string;
  to: string;
  reason: string;
}

export interface AddMachinePlan {
  machine: string;
  newStores: PlannedStore[];
  replicaMoves: ReplicaMove[];
  switchovers: Move[];
  machines: MachineSummary[];
  notes: string[];
  sentence: string;
}

/** The peer for a new replica of a store mastered on `master`: keeps the master's fan-out near target, racks apart, replicas even. */
export function chooseReplicaMachine(
  cluster: PlanCluster,
  master: string,
  options: { exclude?: ReadonlySet<string>; size?: SlotSize; fanOut?: number } = {},
): { machine: string; reason: string } | undefined {
  const size = options.size ?? DEFAULT_SLOT_SIZE;
  const counts = countByMachine(cluster);
  const live = cluster.machines.filter((m) => !m.down);
  const fanOut = targetFanOut(live.length, options.fanOut ?? DEFAULT_FAN_OUT);
  const masterRow = cluster.machines.find((m) => m.name === master);
  const peers = counts.get(master)?.peers ?? new Set<string>();
  const candidates = live.filter((m) => {
    if (m.name === master || options.exclude?.has(m.name)) return false;
    const c = counts.get(m.name)!;
    return freeSlots(m, c.masters + c.replicas, size) > 0;
  });
  if (candidates.length === 0) return undefined;
  const otherRack = !!masterRow?.rack && candidates.some((m) => m.rack !== masterRow.rack);
  const growing = peers.size < fanOut;
  const key = (m: PlanMachine) => {
    const c = counts.get(m.name)!;
    return (otherRack && m.rack === masterRow!.rack ? 1e9 : 0) + (growing === peers.has(m.name) ? 1e6 : 0) + ((c.masters + c.replicas) / Math.max(1, m.slots)) * 1000 + c.replicas / 1000;
  };
  const best = [...candidates].sort((a, b) => key(a) - key(b) || byName(a.name, b.name))[0]!;
  const c = counts.get(best.name)!;
  const why = peers.has(best.name) ? `already one of ${master}'s ${peers.size} peers` : `a new peer for ${master}'s masters (${peers.size} → ${peers.size + 1})`;
  return { machine: best.name, reason: `${why}; ${c.masters + c.replicas} of ${best.slots} slots used${best.rack ? `, rack ${best.rack}` : ''}` };
}

/** For each store whose replica (or, after a failover, old master) is on `retired`, a new replica machine. */
export function planReReplication(cluster: PlanCluster, retired: string, options: { size?: SlotSize; fanOut?: number } = {}): { moves: ReplicaMove[]; unplaced: { store: string; reason: string }[] } {
  if (!cluster.machines.some((m) => m.name === retired) && !cluster.stores.some((s) => s.master === retired || s.replica === retired)) {
    throw new ValidationError(`machine "${retired}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  }
  const work = cloneCluster(cluster);
  // a retired machine may already be left out of the machines; it holds nothing new either way
  work.machines = work.machines.map((m) => (m.name === retired ? { ...m, down: true } : m));
  const moves: ReplicaMove[] = [];
  const unplaced: { store: string; reason: string }[] = [];
  for (const store of work.stores.filter((s) => s.replica === retired).sort((a, b) => byName(a.name, b.name))) {
    const choice = chooseReplicaMachine(work, store.master, options);
    if (!choice) {
      unplaced.push({ store: store.name, reason: `no up machine other than ${store.master} has a free slot` });
      continue;
    }
    store.replica = choice.machine;
    moves.push({ store: store.name, from: retired, to: choice.machine, reason: choice.reason });
  }
  for (const store of work.stores.filter((s) => s.master === retired)) {
    unplaced.push({ store: store.name, reason: `its master is still on ${retired}: fail it over first (slotctl machine failover ${retired})` });
  }
  return { moves, unplaced };
}

/**
 * A machine declared in the cluster (cluster apply) that holds nothing yet: the replicas moved to it and the
 * switchovers that give it its share of masters (`slotctl machine add M --apply` runs them). New stores are the
 * cluster file's to declare: this plan only moves what exists.
 */
export function planFillMachine(cluster: PlanCluster, name: string, options: { size?: SlotSize; fanOut?: number; busy?: ReadonlySet<string> } = {}): AddMachinePlan {
  const machine = cluster.machines.find((m) => m.name === name);
  if (!machine) throw new ValidationError(`machine "${name}" is not in the cluster`, { hint: 'declare it in the cluster file and apply it (slotctl cluster apply FILE), or plan a machine not yet declared with --slots, --rack and --disk' });
  const holds = cluster.stores.filter((s) => s.master === name || s.replica === name).length;
  if (holds) throw new ValidationError(`machine "${name}" already holds ${holds} slot(s): machine add fills an empty machine`, { hint: 'after a machine add that stopped part way, or to spread what it holds: slotctl plan rebalance --apply (masters), slotctl plan fanout --apply (replicas)' });
  if (machine.down || machine.drained) throw new ValidationError(`machine "${name}" is ${machine.down ? 'down' : 'drained'}: nothing is moved to it`, { hint: machine.down ? 'start its agent first' : `slotctl machine undrain ${name}` });
  const rest = { machines: cluster.machines.filter((m) => m.name !== name), stores: cluster.stores };
  return planAddMachine(rest, machine, { ...options, movesOnly: true });
}

/** `busy`: stores no move may touch now (an operation runs on them, or their replica is still seeding). */
export function planAddMachine(cluster: PlanCluster, machine: PlanMachine, options: { size?: SlotSize; fanOut?: number; prefix?: string; movesOnly?: boolean; busy?: ReadonlySet<string> } = {}): AddMachinePlan {
  if (cluster.machines.some((m) => m.name === machine.name)) {
    throw new ValidationError(`machine "${machine.name}" is already in the cluster`, { hint: 'pick a new name, or plan its stores with `slotctl plan layout`' });
  }
  const size = options.size ?? DEFAULT_SLOT_SIZE;
  const work = cloneCluster(cluster);
  work.machines.push({ ...machine, disks: machine.disks.map((d) => ({ ...d })) });
  const notes: string[] = [];
  const live = work.machines.filter((m) => !m.down);
  const usedTotal = work.stores.length * 2;
  const capacity = live.reduce((a, m) => a + m.slots, 0);
  // its fair share of the cluster's slots once it has joined
  const target = Math.min(freeSlots(machine, 0, size), Math.round((usedTotal * machine.slots) / Math.max(1, capacity)));

  // 1. replicas from the fullest machines, each from a store whose master is not yet a partner of the new machine
  const replicaMoves: ReplicaMove[] = [];
  const counts = countByMachine(work);
  const withFree = () => live.filter((m) => m.name !== machine.name && freeSlots(m, counts.get(m.name)!.masters + counts.get(m.name)!.replicas, size) > 0);
  const partners = new Set<string>();
  // a slot freed by a move is not free: the old slot's files stay until the operator removes them
  const full = options.movesOnly || withFree().length === 0;
  // machines none of whose replicas may move (busy, or their masters in the new machine's rack)
  const skip = new Set<string>();
  while (full && replicaMoves.length < target) {
    const fullest = live
      .filter((m) => m.name !== machine.name && !skip.has(m.name) && counts.get(m.name)!.replicas > 0)
      .sort((a, b) => counts.get(b.name)!.replicas + counts.get(b.name)!.masters - (counts.get(a.name)!.replicas + counts.get(a.name)!.masters) || counts.get(b.name)!.replicas - counts.get(a.name)!.replicas || byName(a.name, b.name))[0];
    if (!fullest) break;
    // a store whose master keeps another replica on the fullest machine: its master gains a peer and loses none
    const keepsPeer = (master: string) => work.stores.filter((x) => x.master === master && x.replica === fullest.name).length >= 2;
    // never a store whose master stands in the new machine's rack (a store's two slots stand in two racks)
    const rackOf = (m: string) => work.machines.find((x) => x.name === m)?.rack ?? '';
    const choices = work.stores
      .filter((s) => s.replica === fullest.name && !replicaMoves.some((r) => r.store === s.name) && !options.busy?.has(s.name) && !(machine.rack && rackOf(s.master) === machine.rack))
      .sort((a, b) => Number(partners.has(a.master)) - Number(partners.has(b.master)) || Number(keepsPeer(b.master)) - Number(keepsPeer(a.master)) || byName(a.name, b.name));
    const store = choices[0];
    if (!store) {
      skip.add(fullest.name);
      continue;
    }
    replicaMoves.push({ store: store.name, from: fullest.name, to: machine.name, reason: `${fullest.name} is the fullest (${counts.get(fullest.name)!.masters + counts.get(fullest.name)!.replicas} slots); ${store.master} ${partners.has(store.master) ? 'is already' : 'becomes'} a partner of ${machine.name}` });
    counts.get(fullest.name)!.replicas--;
    counts.get(machine.name)!.replicas++;
    partners.add(store.master);
    store.replica = machine.name;
  }
  if (replicaMoves.length) notes.push(`${options.movesOnly ? 'existing stores only' : 'the cluster is full'}: ${replicaMoves.length} replica(s) move to ${machine.name} (a new replica slot seeded from the master each; the old slot's files stay until removed)`);

  // 2. new stores where the other machines still have free slots, paired with the new machine first
  const free = freeSlots(machine, counts.get(machine.name)!.masters + counts.get(machine.name)!.replicas, size);
  const others = full ? [] : withFree();
  let newStores: PlannedStore[] = [];
  if (free > 0 && others.length > 0) {
    const pairable = Math.min(free, others.reduce((a, m) => a + freeSlots(m, counts.get(m.name)!.masters + counts.get(m.name)!.replicas, size), 0));
    // layout over the new machine and the machines with room only, so every new store has a slot on the new machine
    const sub = cloneCluster(work);
    const keep = new Set([machine.name, ...others.map((m) => m.name)]);
    sub.machines = sub.machines.filter((m) => keep.has(m.name));
    sub.stores = sub.stores.filter((s) => keep.has(s.master) && keep.has(s.replica));
    const layout = planLayout(sub, { count: pairable, size, ...(options.fanOut ? { fanOut: options.fanOut } : {}), prefix: options.prefix ?? 's' });
    const names = new Set(work.stores.map((s) => s.name));
    newStores = layout.stores.filter((s) => s.master.machine === machine.name || s.replica.machine === machine.name);
    const fresh = nextStoreNames([...names], options.prefix ?? 's', newStores.length);
    newStores = newStores.map((s, i) => ({ ...s, store: fresh[i]! }));
    for (const s of newStores) work.stores.push({ name: s.store, master: s.master.machine, replica: s.replica.machine });
    notes.push(...layout.notes);
  }

  // 3. the switchovers that give it (and everyone) a fair share of masters
  const rebalance = planRebalance(work, options.busy);
  for (const m of rebalance.moves) {
    const s = work.stores.find((x) => x.name === m.store)!;
    s.master = m.to;
    s.replica = m.from;
  }
  notes.push(...rebalance.notes);
  const machines = summarize(work);
  const mine = machines.find((m) => m.machine === machine.name)!;
  const sentence = `${machine.name} would hold ${mine.masters} master(s) and ${mine.replicas} replica(s) (fan-out ${mine.fanOut} of ${targetFanOut(live.length, options.fanOut ?? DEFAULT_FAN_OUT)}): ${newStores.length} new store(s), ${replicaMoves.length} replica move(s), ${rebalance.moves.length} switchover(s)`;
  return { machine: machine.name, newStores, replicaMoves, switchovers: rebalance.moves, machines, notes, sentence };
}
