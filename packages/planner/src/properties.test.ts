// Property tests over random clusters (fast-check shrinks a failure to the smallest cluster that shows it).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countByMachine, planLayout, planRebalance, planReReplication, targetFanOut, whatIf, type PlanCluster, type PlanMachine } from './index.js';

const machinesArb = (min: number, max: number, options: { racks?: boolean; drained?: boolean; equal?: boolean } = {}) =>
  fc.integer({ min, max }).chain((n) =>
    fc.tuple(
      fc.array(fc.integer({ min: 2, max: 18 }), { minLength: n, maxLength: n }),
      fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
      fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      fc.integer({ min: 2, max: 18 }),
    ).map(([slots, racks, drained, equalSlots]): PlanMachine[] =>
      slots.map((s, i) => ({
        name: `m${String(i + 1).padStart(2, '0')}`,
        slots: options.equal ? equalSlots : s,
        rack: options.racks ? `r${racks[i]}` : '',
        // at most a third drained, so that masters have somewhere to go
        drained: options.drained ? drained[i]! && i % 3 === 0 : false,
        down: false,
        disks: [],
      })),
    ),
  );

function laidOut(machines: PlanMachine[]): PlanCluster {
  const plan = planLayout({ machines, stores: [] });
  return { machines, stores: plan.stores.map((s) => ({ name: s.store, master: s.master.machine, replica: s.replica.machine })) };
}

/** Random stores: any two distinct machines, any master. */
const randomClusterArb = fc
  .tuple(fc.integer({ min: 2, max: 6 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 9 }), fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }))
  .map(([n, pairs, drained]): PlanCluster => {
    const machines: PlanMachine[] = Array.from({ length: n }, (_, i) => ({ name: `m${i + 1}`, slots: 18, rack: '', drained: drained[i]! && i > 0, down: false, disks: [] }));
    const stores = pairs.map(([a, b], k) => {
      const master = a % n;
      const replica = (master + 1 + (b % (n - 1))) % n;
      return { name: `s${String(k + 1).padStart(2, '0')}`, master: machines[master]!.name, replica: machines[replica]!.name };
    });
    return { machines, stores };
  });

describe('layout properties', () => {
  it('never puts both slots of a store on one machine, never exceeds a machine, no master on a drained one', () => {
    fc.assert(
      fc.property(machinesArb(2, 24, { drained: true }), (machines) => {
        const cluster = laidOut(machines);
        const counts = countByMachine(cluster);
        expect(cluster.stores.length).toBeGreaterThan(0); // two machines of at least two slots hold a store
        for (const s of cluster.stores) expect(s.master).not.toBe(s.replica);
        for (const m of machines) {
          const c = counts.get(m.name)!;
          expect(c.masters + c.replicas).toBeLessThanOrEqual(m.slots);
          if (m.drained) expect(c.masters).toBe(0);
          if (c.masters > 0) expect(c.peers.size).toBeGreaterThanOrEqual(1);
        }
        // as many stores as the free slots allow: two slots on two machines each, a master on an undrained machine
        const free = machines.map((m) => m.slots);
        const total = free.reduce((a, b) => a + b, 0);
        const undrained = machines.filter((m) => !m.drained).reduce((a, m) => a + m.slots, 0);
        expect(cluster.stores.length).toBe(Math.min(Math.floor(total / 2), total - Math.max(...free), undrained));
      }),
      { numRuns: 300 },
    );
  });

  it('balances masters and replicas on equal machines (max − min ≤ 1) and reaches the fan-out min(5, n − 1) or a peer per master', () => {
    fc.assert(
      fc.property(machinesArb(2, 30, { equal: true }), (machines) => {
        const counts = [...countByMachine(laidOut(machines)).values()];
        const masters = counts.map((c) => c.masters);
        const replicas = counts.map((c) => c.replicas);
        expect(Math.max(...masters) - Math.min(...masters)).toBeLessThanOrEqual(1);
        expect(Math.max(...replicas) - Math.min(...replicas)).toBeLessThanOrEqual(1);
        // equal machines, none drained: the full fan-out
        for (const c of counts) expect(c.peers.size).toBeGreaterThanOrEqual(Math.min(targetFanOut(machines.length), c.masters));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the two slots of a store in two racks whenever a balanced rack layout exists', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 12 }), (racks, perRack, slots) => {
        const machines: PlanMachine[] = [];
        for (let r = 0; r < racks; r++) for (let k = 0; k < perRack; k++) machines.push({ name: `m${r}${k}`, slots, rack: `r${r}`, drained: false, down: false, disks: [] });
        const cluster = laidOut(machines);
        const rack = new Map(machines.map((m) => [m.name, m.rack]));
        expect(cluster.stores.length).toBeGreaterThan(0);
        for (const s of cluster.stores) expect(rack.get(s.master)).not.toBe(rack.get(s.replica));
      }),
      { numRuns: 200 },
    );
  });
});

describe('what-if properties', () => {
  it('equals a brute-force recomputation', () => {
    fc.assert(
      fc.property(randomClusterArb, fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), (cluster, picks) => {
        const lose = [...new Set(picks.map((p) => cluster.machines[p % cluster.machines.length]!.name))];
        const plan = whatIf(cluster, lose);
        for (const m of cluster.machines.filter((x) => !lose.includes(x.name))) {
          // brute force: walk every store for this machine alone
          let before = 0;
          let after = 0;
          for (const s of cluster.stores) {
            if (s.master === m.name) {
              before++;
              after++;
            } else if (s.replica === m.name && lose.includes(s.master)) after++;
          }
          const row = plan.machines.find((x) => x.machine === m.name)!;
          expect([row.mastersBefore, row.mastersAfter]).toEqual([before, after]);
        }
        const lost = cluster.stores.filter((s) => lose.includes(s.master) && lose.includes(s.replica)).map((s) => s.name);
        const orphaned = cluster.stores.filter((s) => lose.includes(s.master) !== lose.includes(s.replica)).map((s) => s.name);
        expect(plan.lostStores).toEqual(lost.sort());
        expect(plan.withoutReplica).toEqual(orphaned.sort());
        if (plan.machines.length === 0) expect(plan.worstIncrease).toBeUndefined();
        else expect(plan.worstIncrease?.increase).toBe(Math.max(...plan.machines.map((m) => m.mastersAfter - m.mastersBefore)));
      }),
      { numRuns: 500 },
    );
  });
});

/** Applies switchovers and checks each is a real one: the store's master was `from`, its replica `to`. */
function apply(cluster: PlanCluster, moves: readonly { store: string; from: string; to: string }[]): PlanCluster {
  const stores = cluster.stores.map((s) => ({ ...s }));
  const seen = new Set<string>();
  for (const m of moves) {
    expect(seen.has(m.store)).toBe(false);
    seen.add(m.store);
    const s = stores.find((x) => x.name === m.store)!;
    expect([s.master, s.replica]).toEqual([m.from, m.to]);
    [s.master, s.replica] = [s.replica, s.master];
  }
  return { machines: cluster.machines, stores };
}

/** The fewest switchovers that reach the shares, by trying every subset of stores (small clusters only). */
function bruteForceMinimum(cluster: PlanCluster, inShare: (c: PlanCluster) => boolean): number | undefined {
  const n = cluster.stores.length;
  let best: number | undefined;
  for (let mask = 0; mask < 1 << n; mask++) {
    let bits = 0;
    for (let k = mask; k; k &= k - 1) bits++;
    if (best !== undefined && bits >= best) continue;
    const drained = new Set(cluster.machines.filter((m) => m.drained).map((m) => m.name));
    const moves = cluster.stores.filter((_, i) => mask & (1 << i)).map((s) => ({ store: s.name, from: s.master, to: s.replica }));
    if (moves.some((m) => drained.has(m.to))) continue;
    const stores = cluster.stores.map((s, i) => (mask & (1 << i) ? { ...s, master: s.replica, replica: s.master } : s));
    if (inShare({ machines: cluster.machines, stores })) best = bits;
  }
  return best;
}

describe('rebalance properties', () => {
  it('never targets a drained machine, and finds the fewest switchovers that reach the shares', () => {
    fc.assert(
      fc.property(randomClusterArb, (cluster) => {
        const plan = planRebalance(cluster);
        const drained = new Set(cluster.machines.filter((m) => m.drained).map((m) => m.name));
        for (const m of plan.moves) expect(drained.has(m.to)).toBe(false);
        const after = apply(cluster, plan.moves);
        const counts = countByMachine(after);
        for (const m of cluster.machines) expect(counts.get(m.name)!.masters).toBe(plan.after[m.name]);
        const inShare = (c: PlanCluster) => {
          const k = countByMachine(c);
          return cluster.machines.every((m) => k.get(m.name)!.masters >= plan.share[m.name]!.min && k.get(m.name)!.masters <= plan.share[m.name]!.max);
        };
        const minimum = bruteForceMinimum(cluster, inShare);
        expect(plan.balanced).toBe(minimum !== undefined);
        if (minimum !== undefined) expect(plan.moves.length).toBe(minimum);
      }),
      { numRuns: 400 },
    );
  });

  it('reaches balance after any single machine failed over and returned', () => {
    fc.assert(
      fc.property(machinesArb(2, 20, { equal: true }), fc.nat(), (machines, pick) => {
        const cluster = laidOut(machines);
        const lost = machines[pick % machines.length]!.name;
        const failedOver = { machines, stores: cluster.stores.map((s) => (s.master === lost ? { ...s, master: s.replica, replica: s.master } : s)) };
        const plan = planRebalance(failedOver);
        expect(plan.balanced).toBe(true);
        const masters = [...countByMachine(apply(failedOver, plan.moves)).values()].map((c) => c.masters);
        expect(Math.max(...masters) - Math.min(...masters)).toBeLessThanOrEqual(1);
      }),
      { numRuns: 200 },
    );
  });
});

describe('re-replication properties', () => {
  it('gives every store left without a replica a new one on a live machine other than its master, within capacity', () => {
    fc.assert(
      fc.property(machinesArb(3, 16, { equal: true }), fc.nat(), (machines, pick) => {
        // leave room: a layout of about two thirds of the slots
        const total = machines.reduce((a, m) => a + m.slots, 0);
        const plan = planLayout({ machines, stores: [] }, { count: Math.floor(total / 3) });
        // the machine that goes holds replicas (otherwise there is nothing to re-replicate and nothing is tested)
        const holders = machines.filter((m) => plan.stores.some((s) => s.replica.machine === m.name));
        expect(holders.length).toBeGreaterThan(0);
        const gone = holders[pick % holders.length]!.name;
        const stores = plan.stores
          .map((s) => ({ name: s.store, master: s.master.machine, replica: s.replica.machine }))
          .map((s) => (s.master === gone ? { ...s, master: s.replica, replica: s.master } : s));
        const cluster: PlanCluster = { machines: machines.map((m) => (m.name === gone ? { ...m, down: true } : m)), stores };
        const result = planReReplication(cluster, gone);
        const degraded = stores.filter((s) => s.replica === gone).map((s) => s.name).sort();
        expect(degraded.length).toBeGreaterThan(0);
        expect([...result.moves.map((m) => m.store), ...result.unplaced.map((u) => u.store)].sort()).toEqual(degraded);
        // a third of the slots is free: something is always placed
        expect(result.moves.length, JSON.stringify(result.unplaced)).toBeGreaterThan(0);
        const after = stores.map((s) => ({ ...s, replica: result.moves.find((m) => m.store === s.name)?.to ?? s.replica }));
        const counts = countByMachine({ machines, stores: after });
        const used = (m: string) => counts.get(m)!.masters + counts.get(m)!.replicas;
        for (const m of result.moves) {
          expect(m.to).not.toBe(gone);
          expect(m.to).not.toBe(after.find((s) => s.name === m.store)!.master);
        }
        for (const m of machines) if (m.name !== gone) expect(used(m.name)).toBeLessThanOrEqual(m.slots);
        // a store left unplaced had nowhere to go: every live machine but its master is full
        for (const u of result.unplaced) {
          const master = after.find((s) => s.name === u.store)!.master;
          for (const m of machines.filter((x) => x.name !== gone && x.name !== master)) expect(used(m.name), `${u.store} unplaced: ${u.reason}`).toBeGreaterThanOrEqual(m.slots);
        }
      }),
      { numRuns: 200 },
    );
  });
});
