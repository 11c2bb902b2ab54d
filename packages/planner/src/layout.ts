// Pure: places new stores on a new or growing cluster. Existing stores stay where they are. Rules, in order:
// a store's two slots on two machines (two racks when the racks allow); every machine's masters have their replicas
// on ≥ min(fan-out, machines − 1) peers; masters per machine balanced by slot count (equal machines differ by ≤ 1),
// so are replicas; a slot's partitions fit on the machine's disks.
import { IndexHeap } from './heap.js';
import {
  DEFAULT_FAN_OUT,
  DEFAULT_SLOT_SIZE,
  cloneCluster,
  countByMachine,
  freeSlots,
  reserveSlot,
  summarize,
  targetFanOut,
  type MachineSummary,
  type PlanCluster,
  type PlanMachine,
  type SlotSize,
} from './model.js';

export interface LayoutOptions {
  /** How many stores to add; default as many as fit. */
  count?: number | undefined;
  /** New stores are named PREFIX + number, after the highest existing number (default "s"). */
  prefix?: string | undefined;
  size?: SlotSize | undefined;
  fanOut?: number | undefined;
}

export interface PlannedSlot {
  machine: string;
  /** The disks its data and meta partitions go on ('' when the machine declares none). */
  dataDisk: string;
  metaDisk: string;
}

export interface PlannedStore {
  store: string;
  master: PlannedSlot;
  replica: PlannedSlot;
  reason: string;
}

export interface LayoutPlan {
  stores: PlannedStore[];
  machines: MachineSummary[];
  fanOutTarget: number;
  /** Why fewer stores were placed than asked, a rule that could not hold, and so on. */
  notes: string[];
}

interface Pair {
  master: string;
  replica: string;
  why: string;
}

export function nextStoreNames(existing: readonly string[], prefix: string, count: number): string[] {
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)$`);
  let highest = 0;
  let width = 2;
  for (const name of existing) {
    const match = pattern.exec(name);
    if (match) {
      highest = Math.max(highest, Number(match[1]));
      width = Math.max(width, match[1]!.length);
    }
  }
  width = Math.max(width, String(highest + count).length);
  return Array.from({ length: count }, (_, i) => `${prefix}${String(highest + i + 1).padStart(width, '0')}`);
}

export function planLayout(input: PlanCluster, options: LayoutOptions = {}): LayoutPlan {
  const cluster = cloneCluster(input);
  const size = options.size ?? DEFAULT_SLOT_SIZE;
  const notes: string[] = [];
  const machines = cluster.machines.filter((m) => !m.down);
  const n = machines.length;
  const fanOut = targetFanOut(n, options.fanOut ?? DEFAULT_FAN_OUT);
  const counts = countByMachine(cluster);
  for (const m of cluster.machines) if (m.down) notes.push(`${m.name} is down: nothing placed on it`);
  // per machine, by index: the inner loops run once per slot of a 1,000-machine cluster
  const name = machines.map((m) => m.name);
  const rackOf = machines.map((m) => m.rack);
  const drained = machines.map((m) => m.drained);
  const masters = machines.map((m) => counts.get(m.name)!.masters);
  const used = machines.map((m) => counts.get(m.name)!.masters + counts.get(m.name)!.replicas);
  const free = machines.map((m, i) => freeSlots(m, used[i]!, size));
  // shares are of the slots a machine can really hold (a full disk lowers them)
  const slots = machines.map((_, i) => Math.max(1, used[i]! + free[i]!));
  free.forEach((f, i) => {
    if (f < machines[i]!.slots - used[i]!) notes.push(`${name[i]}: its disks hold only ${f} more slot(s) of ${Math.round(size.dataBytes / 1e9)} GB data + ${Math.round(size.metaBytes / 1e9)} GB meta, not ${machines[i]!.slots - used[i]!}`);
  });

  // how many stores fit: every store needs two slots on two machines, and a master on an undrained machine
  const totalFree = free.reduce((a, b) => a + b, 0);
  const fits = Math.min(Math.floor(totalFree / 2), totalFree - Math.max(0, ...free));
  const eligibleFree = free.reduce((a, f, i) => a + (drained[i] ? 0 : f), 0);
  const count = Math.min(options.count ?? fits, fits, eligibleFree);
  if (options.count !== undefined && count < options.count) {
    notes.push(`only ${count} of the ${options.count} stores asked for fit (free slots: ${totalFree}, on machines that may hold masters: ${eligibleFree})`);
  }

  // 1. new masters: the machine with the fewest masters per slot first, never a drained one
  const newMasters = new Array<number>(n).fill(0);
  const share = (i: number) => (masters[i]! + newMasters[i]!) / slots[i]!;
  const byMasters = new IndexHeap((a, b) => share(a) < share(b) || (share(a) === share(b) && a < b));
  for (let i = 0; i < n; i++) if (!drained[i] && free[i]! > 0) byMasters.push(i);
  for (let k = 0; k < count; k++) {
    const i = byMasters.pop();
    if (i === undefined) break;
    newMasters[i]!++;
    // room for its share of replicas too, unless masters need it (drained machines, full disks)
    if (newMasters[i]! < free[i]!) byMasters.push(i);
  }

  // 2. new replicas: the least used machine (by share of its slots) first; never more than the stores mastered elsewhere
  const newSlots = [...newMasters];
  const byUsage = new IndexHeap((a, b) => (used[a]! + newSlots[a]!) * slots[b]! < (used[b]! + newSlots[b]!) * slots[a]! || ((used[a]! + newSlots[a]!) * slots[b]! === (used[b]! + newSlots[b]!) * slots[a]! && a < b));
  const replicaRoom = (i: number) => Math.min(free[i]!, count) > newSlots[i]!;
  for (let i = 0; i < n; i++) if (replicaRoom(i)) byUsage.push(i);
  for (let k = 0; k < count; k++) {
    const i = byUsage.pop();
    if (i === undefined) break;
    newSlots[i]!++;
    if (replicaRoom(i)) byUsage.push(i);
  }
  const replicasLeft = newSlots.map((s, i) => s - newMasters[i]!);
  const mastersLeft = [...newMasters];

  // 3. pair each new master with a replica machine, round-robin over the machines so that no machine is left with
  //    only its own replica slots; a machine's first peers are new ones until it reaches the fan-out, then its own
  const index = new Map(name.map((x, i) => [x, i]));
  const peers = machines.map((m) => new Set([...counts.get(m.name)!.peers].map((p) => index.get(p) ?? -1)));
  const shared = machines.map(() => new Map<number, number>());
  for (const s of cluster.stores) {
    const a = index.get(s.master);
    const b = index.get(s.replica);
    if (a !== undefined && b !== undefined) shared[a]!.set(b, (shared[a]!.get(b) ?? 0) + 1);
  }
  const racks = new Set(rackOf).size > 1;
  const pairs: Pair[] = [];
  const leftovers: number[] = [];
  const order = name.map((_, i) => i).sort((a, b) => mastersLeft[b]! - mastersLeft[a]! || a - b);
  for (let placed = true; placed && pairs.length + leftovers.length < count; ) {
    placed = false;
    for (const i of order) {
      if (mastersLeft[i] === 0) continue;
      mastersLeft[i]!--;
      placed = true;
      const own = peers[i]!;
      const growing = own.size < fanOut;
      let best = -1;
      let bestKey = Infinity;
      for (let j = 0; j < n; j++) {
        if (j === i || replicasLeft[j] === 0) continue;
        const key =
          (racks && rackOf[i] !== '' && rackOf[j] === rackOf[i] ? 1e9 : 0) +
          (growing === own.has(j) ? 1e6 : 0) +
          (1000 - replicasLeft[j]!) * 100 +
          Math.min(99, shared[i]!.get(j) ?? 0);
        if (key < bestKey) {
          best = j;
          bestKey = key;
        }
      }
      if (best < 0) {
        leftovers.push(i);
        continue;
      }
      const why = own.has(best) ? `one of ${name[i]}'s ${own.size} replica peers, with the most free replica slots` : `adds peer ${own.size + 1} for ${name[i]}'s masters`;
      const rackWhy = rackOf[i] && rackOf[best] && rackOf[best] !== rackOf[i] ? `, rack ${rackOf[best]} unlike ${rackOf[i]}` : '';
      pairs.push({ master: name[i]!, replica: name[best]!, why: why + rackWhy });
      own.add(best);
      shared[i]!.set(best, (shared[i]!.get(best) ?? 0) + 1);
      replicasLeft[best]!--;
    }
  }

  // 4. a master left with only its own machine's replica slots: trade places with a pair placed before
  for (const i of leftovers) {
    const k = pairs.findIndex((p) => p.master !== name[i] && p.replica !== name[i]);
    if (k < 0) {
      notes.push(`a store for ${name[i]} could not be paired: no other machine has a free slot`);
      continue;
    }
    const p = pairs[k]!;
    pairs[k] = { master: p.master, replica: name[i]!, why: `${name[i]} had replica slots left over (exchanged)` };
    pairs.push({ master: name[i]!, replica: p.replica, why: `exchanged with ${p.master}'s store so that ${name[i]}'s master has a peer` });
  }

  const rack = new Map(machines.map((m) => [m.name, m.rack]));
  if (racks) separateRacks(pairs, rack);
  improveFanOut(pairs, cluster, (m) => reachableFanOut(m, machines, fanOut), rack);

  // 5. partitions on disks, names, reasons
  const byMachine = new Map(machines.map((m) => [m.name, m]));
  const names = nextStoreNames(
    cluster.stores.map((s) => s.name),
    options.prefix ?? 's',
    pairs.length,
  );
  const stores: PlannedStore[] = pairs.map((p, k) => {
    const place = (machine: string): PlannedSlot => {
      const disks = reserveSlot(byMachine.get(machine)!, size) ?? { data: '', meta: '' };
      return { machine, dataDisk: disks.data, metaDisk: disks.meta };
    };
    const store = names[k]!;
    cluster.stores.push({ name: store, master: p.master, replica: p.replica });
    return { store, master: place(p.master), replica: place(p.replica), reason: `master on ${p.master} (fewest masters per slot), replica on ${p.replica}: ${p.why}` };
  });
  const machinesOut = summarize(cluster);
  for (const s of machinesOut) {
    const want = Math.min(reachableFanOut(s.machine, machines, fanOut), s.masters);
    if (!s.down && s.fanOut < want) notes.push(`${s.machine}: replicas of its ${s.masters} masters are on ${s.fanOut} peer(s), fewer than ${want}: the free slots allow no better (existing stores are not moved)`);
  }
  if (racks) {
    const sameRack = cluster.stores.filter((s) => rack.get(s.master) === rack.get(s.replica) && rack.get(s.master) !== '').length;
    if (sameRack) notes.push(`${sameRack} store(s) have both slots in one rack: the racks' free slots allow no better`);
  }
  return { stores, machines: machinesOut, fanOutTarget: fanOut, notes };
}

/**
 * The fan-out a machine can reach: the target, or fewer when racks are labelled and fewer machines stand in other
 * racks (two racks apart matters more than a fifth peer: a rack lost must not take both slots of a store).
 */
export function reachableFanOut(machine: string, machines: readonly PlanMachine[], fanOut: number): number {
  const self = machines.find((m) => m.name === machine);
  if (!self?.rack || new Set(machines.map((m) => m.rack)).size < 2) return fanOut;
  return Math.min(fanOut, machines.filter((m) => m.rack !== self.rack && !m.down).length);
}

/** A new store left with both slots in one rack swaps replica machines with another new store where both end apart. */
function separateRacks(pairs: Pair[], rack: ReadonlyMap<string, string>): void {
  const apart = (a: string, b: string) => a !== b && (!rack.get(a) || rack.get(a) !== rack.get(b));
  for (let x = 0; x < pairs.length; x++) {
    const { master: a, replica: b } = pairs[x]!;
    if (apart(a, b)) continue;
    const y = pairs.findIndex((p) => apart(a, p.replica) && apart(p.master, b));
    if (y < 0) continue;
    const { master: c, replica: d } = pairs[y]!;
    pairs[x] = { master: a, replica: d, why: `rack ${rack.get(d)} unlike ${rack.get(a)} (exchanged with ${c})` };
    pairs[y] = { master: c, replica: b, why: `exchanged with ${a} so that both stores span two racks` };
  }
}

/**
 * Raises the fan-out of machines below target by swapping the replica machines of two new stores: i's store on a
 * peer it uses twice moves to a machine it does not use yet, and that machine's store there takes i's old peer.
 * Counts per machine do not change; only swaps that lower nobody's fan-out below target are made.
 */
function improveFanOut(pairs: Pair[], cluster: PlanCluster, fanOutOf: (machine: string) => number, rack: ReadonlyMap<string, string>): void {
  const use = new Map<string, Map<string, number>>();
  const bump = (a: string, b: string, by: number) => {
    let m = use.get(a);
    if (!m) use.set(a, (m = new Map()));
    const n = (m.get(b) ?? 0) + by;
    if (n === 0) m.delete(b);
    else m.set(b, n);
  };
  for (const s of cluster.stores) bump(s.master, s.replica, 1);
  for (const p of pairs) bump(p.master, p.replica, 1);
  const mastersOf = (m: string) => [...(use.get(m)?.values() ?? [])].reduce((a, b) => a + b, 0);
  const fanOf = (m: string) => use.get(m)?.size ?? 0;
  const wants = (m: string) => Math.min(fanOutOf(m), mastersOf(m));
  const rackOk = (a: string, b: string) => !rack.get(a) || rack.get(a) !== rack.get(b);
  for (let pass = 0; pass < 3; pass++) {
    let changed = false;
    for (const i of new Set(pairs.map((p) => p.master))) {
      while (fanOf(i) < wants(i)) {
        const x = pairs.findIndex((p) => p.master === i && (use.get(i)!.get(p.replica) ?? 0) >= 2);
        if (x < 0) break;
        const b = pairs[x]!.replica;
        const y = pairs.findIndex(
          (p) =>
            p.master !== i &&
            p.master !== b &&
            p.replica !== i &&
            !use.get(i)!.has(p.replica) &&
            rackOk(i, p.replica) &&
            rackOk(p.master, b) &&
            // c swaps its peer d for b: its fan-out may not fall below where it stands or its target
            fanOf(p.master) - (use.get(p.master)!.get(p.replica) === 1 ? 1 : 0) + (use.get(p.master)!.has(b) ? 0 : 1) >= Math.min(fanOf(p.master), wants(p.master)),
        );
        if (y < 0) break;
        const c = pairs[y]!.master;
        const d = pairs[y]!.replica;
        bump(i, b, -1);
        bump(i, d, 1);
        bump(c, d, -1);
        bump(c, b, 1);
        pairs[x] = { master: i, replica: d, why: `adds peer ${fanOf(i)} for ${i}'s masters (exchanged with ${c})` };
        pairs[y] = { master: c, replica: b, why: `exchanged with ${i} to raise its fan-out` };
        changed = true;
      }
    }
    if (!changed) break;
  }
}
