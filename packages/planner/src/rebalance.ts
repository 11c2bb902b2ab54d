// Pure: the fewest switchovers that bring masters back into balance (after a failover, an undrain, a new machine).
// A switchover moves one store's master to the machine of its replica, so it is a unit of flow along an edge
// "master machine → replica machine". Each up, undrained machine has a share of the masters proportional to its
// slots (equal machines: ⌊T/k⌋ or ⌈T/k⌉); drained machines should hold none. A min-cost flow sends masters from
// machines above their share to machines below it, each edge costing one switchover: the fewest switchovers that
// reach balance, chains (A → B → C) included. Never onto a drained or down machine; never a busy store.
import { byName, countByMachine, type PlanCluster } from './model.js';

export interface Move {
  store: string;
  from: string;
  to: string;
  reason: string;
}

export interface RebalancePlan {
  moves: Move[];
  /** Masters per up machine, before and after the moves. */
  before: Record<string, number>;
  after: Record<string, number>;
  /** Each machine's share: the range its master count should end in. */
  share: Record<string, { min: number; max: number }>;
  balanced: boolean;
  sentence: string;
  notes: string[];
}

/** Each eligible machine's share of `total` masters, proportional to its slots, as a [floor, ceil] range. */
export function masterShares(machines: readonly { name: string; slots: number }[], total: number): Map<string, { min: number; max: number }> {
  const slots = machines.reduce((a, m) => a + Math.max(1, m.slots), 0);
  const out = new Map<string, { min: number; max: number }>();
  for (const m of machines) {
    const exact = (total * Math.max(1, m.slots)) / slots;
    // a tiny tolerance: 9.000000001 is 9
    const lo = Math.floor(exact + 1e-9);
    out.set(m.name, { min: lo, max: Math.abs(exact - lo) < 1e-9 ? lo : lo + 1 });
  }
  return out;
}

class Flow {
  readonly head: number[];
  readonly to: number[] = [];
  readonly cap: number[] = [];
  readonly cost: number[] = [];
  readonly next: number[] = [];
  constructor(readonly nodes: number) {
    this.head = new Array<number>(nodes).fill(-1);
  }
  add(a: number, b: number, cap: number, cost: number): number {
    const e = this.to.length;
    this.to.push(b, a);
    this.cap.push(cap, 0);
    this.cost.push(cost, -cost);
    this.next.push(this.head[a]!, this.head[b]!);
    this.head[a] = e;
    this.head[b] = e + 1;
    return e;
  }
  /** Successive shortest paths (SPFA: the costs are negative) while a path still lowers the cost. */
  run(source: number, sink: number): void {
    const dist = new Float64Array(this.nodes);
    const via = new Int32Array(this.nodes);
    const queued = new Uint8Array(this.nodes);
    for (;;) {
      dist.fill(Infinity);
      via.fill(-1);
      dist[source] = 0;
      const queue = [source];
      queued[source] = 1;
      for (let qi = 0; qi < queue.length; qi++) {
        const u = queue[qi]!;
        queued[u] = 0;
        for (let e = this.head[u]!; e !== -1; e = this.next[e]!) {
          if (this.cap[e]! <= 0) continue;
          const v = this.to[e]!;
          const d = dist[u]! + this.cost[e]!;
          if (d < dist[v]!) {
            dist[v] = d;
            via[v] = e;
            if (!queued[v]) {
              queued[v] = 1;
              queue.push(v);
            }
          }
        }
      }
      if (!(dist[sink]! < 0)) return;
      let push = Infinity;
      for (let v = sink; v !== source; v = this.to[via[v]! ^ 1]!) push = Math.min(push, this.cap[via[v]!]!);
      for (let v = sink; v !== source; v = this.to[via[v]! ^ 1]!) {
        this.cap[via[v]!]! -= push;
        this.cap[via[v]! ^ 1]! += push;
      }
    }
  }
}

const MUST = 1_000_000;

export function planRebalance(cluster: PlanCluster, busy: ReadonlySet<string> = new Set()): RebalancePlan {
  const up = cluster.machines.filter((m) => !m.down);
  const eligible = up.filter((m) => !m.drained);
  const counts = countByMachine(cluster);
  const total = up.reduce((a, m) => a + counts.get(m.name)!.masters, 0);
  const share = masterShares(eligible, total);
  for (const m of up) if (m.drained) share.set(m.name, { min: 0, max: 0 });
  const notes: string[] = [];
  const index = new Map(up.map((m, i) => [m.name, i]));
  const drained = new Set(up.filter((m) => m.drained).map((m) => m.name));
  const flow = new Flow(up.length + 2);
  const source = up.length;
  const sink = up.length + 1;
  for (const m of up) {
    const i = index.get(m.name)!;
    const have = counts.get(m.name)!.masters;
    const { min, max } = share.get(m.name)!;
    if (have > max) flow.add(source, i, have - max, -MUST);
    if (Math.min(have, max) > min) flow.add(source, i, Math.min(have, max) - min, 0);
    if (drained.has(m.name)) continue;
    if (have < min) flow.add(i, sink, min - have, -MUST);
    if (max > Math.max(have, min)) flow.add(i, sink, max - Math.max(have, min), 0);
  }
  // one edge per (master machine, replica machine) pair, as many units as it has movable stores
  const candidates = new Map<string, string[]>();
  for (const s of [...cluster.stores].sort((a, b) => byName(a.name, b.name))) {
    if (!index.has(s.master) || !index.has(s.replica) || drained.has(s.replica) || busy.has(s.name)) continue;
    const key = `${s.master}\u0000${s.replica}`;
    const list = candidates.get(key) ?? [];
    list.push(s.name);
    candidates.set(key, list);
  }
  const edges: { key: string; e: number; cap: number }[] = [];
  for (const [key, list] of candidates) {
    const [a, b] = key.split('\u0000') as [string, string];
    edges.push({ key, e: flow.add(index.get(a)!, index.get(b)!, list.length, 1), cap: list.length });
  }
  flow.run(source, sink);

  const before: Record<string, number> = {};
  for (const m of [...up].sort((a, b) => byName(a.name, b.name))) before[m.name] = counts.get(m.name)!.masters;
  const after = { ...before };
  const moves: Move[] = [];
  for (const { key, e, cap } of edges) {
    const used = cap - flow.cap[e]!;
    if (used <= 0) continue;
    const [from, to] = key.split('\u0000') as [string, string];
    for (const store of candidates.get(key)!.slice(0, used)) {
      const s = share.get(from)!;
      const why = drained.has(from) ? `${from} is drained` : `${from} has ${before[from]} masters, its share is ${s.min === s.max ? s.min : `${s.min}–${s.max}`}`;
      moves.push({ store, from, to, reason: `${why}; ${to} had ${before[to]} (share ${share.get(to)!.min}–${share.get(to)!.max})` });
      after[from]!--;
      after[to]!++;
    }
  }
  moves.sort((a, b) => byName(a.store, b.store));
  const off = up.filter((m) => after[m.name]! < share.get(m.name)!.min || after[m.name]! > share.get(m.name)!.max);
  for (const m of off) {
    notes.push(`${m.name} ends with ${after[m.name]} masters, outside its share ${share.get(m.name)!.min}–${share.get(m.name)!.max}: no store links it to a machine that could take or give one (its stores busy, or their other slot drained or down)`);
  }
  for (const m of cluster.machines) if (m.down && counts.get(m.name)!.masters > 0) notes.push(`${m.name} is down with ${counts.get(m.name)!.masters} master(s): not moved (slotctl machine failover)`);
  const balanced = off.length === 0;
  const range = eligible.length ? `${Math.min(...eligible.map((m) => share.get(m.name)!.min))}–${Math.max(...eligible.map((m) => share.get(m.name)!.max))}` : '0';
  const sentence =
    moves.length === 0 && balanced
      ? `already balanced: every machine holds its share of masters (${range})`
      : `${moves.length} switchover(s) ${balanced ? 'bring every machine to its share' : 'bring machines as close to their share as the stores allow'} of ${total} masters over ${eligible.length} machine(s) (${range} each)`;
  return { moves, before, after, share: Object.fromEntries(share), balanced, sentence, notes };
}
