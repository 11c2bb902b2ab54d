// Pure: `slotctl plan fanout` — over how many peers each machine's masters keep their replicas, and the replica moves
// that bring every machine to the target fan-out, min(5, machines − 1), or to as many peers as it has masters, or as
// there are up machines outside its rack (racks labelled), when that is fewer. A move takes one store whose replica shares its machine with another of the master's replicas (so no
// peer is lost) to a machine that is not yet a peer: undrained, up, with a free slot, never in the master's rack when
// racks are labelled. Greedy, lowest fan-out first; each move named with why.
import { DEFAULT_FAN_OUT, DEFAULT_SLOT_SIZE, byName, cloneCluster, countByMachine, freeSlots, targetFanOut, summarize, type MachineSummary, type PlanCluster, type PlanMachine, type SlotSize } from './model.js';
import type { ReplicaMove } from './grow.js';

export interface FanOutMachine extends MachineSummary {
  /** The fan-out it should have: the cluster's target, or its masters when fewer. */
  target: number;
}

export interface FanOutPlan {
  target: number;
  /** Each machine now, with its own target. */
  before: FanOutMachine[];
  moves: ReplicaMove[];
  /** Each machine once the moves are done. */
  after: FanOutMachine[];
  /** Machines the moves leave below their target, and why. */
  short: { machine: string; fanOut: number; target: number; why: string }[];
  sentence: string;
}

/** Each machine's own target: the cluster's, at most its masters, at most the up machines outside its rack. */
function withTargets(cluster: PlanCluster, target: number): FanOutMachine[] {
  const live = cluster.machines.filter((m) => !m.down);
  return summarize(cluster).map((m) => {
    const reachable = live.filter((x) => x.name !== m.machine && !(m.rack && x.rack === m.rack)).length;
    return { ...m, target: m.down ? 0 : Math.min(target, m.masters, reachable) };
  });
}

export function planFanOut(cluster: PlanCluster, options: { size?: SlotSize; fanOut?: number; exclude?: ReadonlySet<string> } = {}): FanOutPlan {
  const size = options.size ?? DEFAULT_SLOT_SIZE;
  const live = cluster.machines.filter((m) => !m.down);
  const target = targetFanOut(live.length, options.fanOut ?? DEFAULT_FAN_OUT);
  const before = withTargets(cluster, target);
  const work = cloneCluster(cluster);
  const moves: ReplicaMove[] = [];
  const short: FanOutPlan['short'] = [];
  const moved = new Set<string>();
  const rack = new Map(work.machines.map((m) => [m.name, m.rack]));
  // lowest fan-out (against its own target) first: it gains the most from the free slots
  const order = before.filter((m) => !m.down && m.fanOut < m.target).sort((a, b) => a.fanOut - a.target - (b.fanOut - b.target) || byName(a.machine, b.machine));
  for (const { machine } of order) {
    for (;;) {
      const counts = countByMachine(work);
      const mine = counts.get(machine)!;
      const want = before.find((m) => m.machine === machine)!.target;
      if (mine.peers.size >= want) break;
      // a store of this master whose replica machine holds another of its replicas: moving it loses no peer
      const perPeer = new Map<string, number>();
      for (const s of work.stores) if (s.master === machine) perPeer.set(s.replica, (perPeer.get(s.replica) ?? 0) + 1);
      const store = work.stores
        .filter((s) => s.master === machine && (perPeer.get(s.replica) ?? 0) >= 2 && !moved.has(s.name) && !options.exclude?.has(s.name))
        .sort((a, b) => (perPeer.get(b.replica) ?? 0) - (perPeer.get(a.replica) ?? 0) || byName(a.name, b.name))[0];
      if (!store) {
        short.push({ machine, fanOut: mine.peers.size, target: want, why: `each of its ${mine.masters} master(s) already has a replica on a peer of its own, or the ones that could move are busy` });
        break;
      }
      const used = (m: PlanMachine) => counts.get(m.name)!.masters + counts.get(m.name)!.replicas;
      // never in the master's own rack (a store's two slots stand in two racks; slotctl store move-replica refuses it)
      const ownRack = rack.get(machine) ?? '';
      const candidates = work.machines.filter((m) => !m.down && !m.drained && m.name !== machine && !mine.peers.has(m.name) && !(ownRack && m.rack === ownRack) && freeSlots(m, used(m), size) > 0);
      const to = candidates.sort((a, b) => used(a) / Math.max(1, a.slots) - used(b) / Math.max(1, b.slots) || byName(a.name, b.name))[0];
      if (!to) {
        short.push({ machine, fanOut: mine.peers.size, target: want, why: `no up, undrained machine${ownRack ? ` outside its rack ${ownRack}` : ''} that is not yet its peer has a free slot` });
        break;
      }
      moves.push({
        store: store.name,
        from: store.replica,
        to: to.name,
        reason: `${machine}'s fan-out ${mine.peers.size} → ${mine.peers.size + 1}: ${store.replica} keeps ${(perPeer.get(store.replica) ?? 0) - 1} other replica(s) of ${machine}'s masters; ${to.name} has ${to.slots - used(to)} free slot(s)${to.rack ? `, rack ${to.rack}` : ''}`,
      });
      moved.add(store.name);
      store.replica = to.name;
    }
  }
  const after = withTargets(work, target);
  const below = after.filter((m) => !m.down && m.fanOut < m.target).length;
  const sentence = moves.length
    ? `${moves.length} replica move(s) bring ${before.filter((m) => !m.down && m.fanOut < m.target).length - below} machine(s) to their fan-out (target ${target})${below ? `; ${below} stay below it` : ''}`
    : below
      ? `no replica move helps: ${below} machine(s) below the fan-out target ${target}`
      : `every machine has its fan-out (target ${target}): nothing to move`;
  return { target, before, moves, after, short, sentence };
}
