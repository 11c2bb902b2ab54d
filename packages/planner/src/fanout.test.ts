// The fan-out plan: an example, and properties over random clusters (fast-check).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countByMachine, planFanOut, type PlanCluster, type PlanMachine } from './index.js';

const machine = (name: string, over: Partial<PlanMachine> = {}): PlanMachine => ({ name, slots: 18, rack: '', drained: false, down: false, disks: [], ...over });

describe('plan fanout', () => {
  it('spreads the replicas of a machine whose masters all replicate to one peer, without losing a peer', () => {
    // m1's three masters all have their replica on m2: fan-out 1, target min(3, 3) = 3
    const cluster: PlanCluster = {
      machines: [machine('m1'), machine('m2'), machine('m3'), machine('m4', { drained: true }), machine('m5', { down: true })],
      stores: [
        { name: 's1', master: 'm1', replica: 'm2' },
        { name: 's2', master: 'm1', replica: 'm2' },
        { name: 's3', master: 'm1', replica: 'm2' },
        { name: 's4', master: 'm2', replica: 'm3' },
        { name: 's5', master: 'm3', replica: 'm1' },
      ],
    };
    const plan = planFanOut(cluster);
    expect(plan.target).toBe(3);
    expect(plan.before.find((m) => m.machine === 'm1')).toMatchObject({ fanOut: 1, target: 3 });
    // neither the drained m4 nor the down m5 gets a replica: one move to m3, then m1 is short of its third peer
    expect(plan.moves).toEqual([expect.objectContaining({ store: 's1', from: 'm2', to: 'm3' })]);
    expect(plan.moves[0]!.reason).toMatch(/m1's fan-out 1 → 2: m2 keeps 2 other replica/);
    expect(plan.after.find((m) => m.machine === 'm1')!.fanOut).toBe(2);
    expect(plan.short).toEqual([expect.objectContaining({ machine: 'm1', fanOut: 2, target: 3 })]);
    // with m4 undrained, it becomes the third peer
    const open = planFanOut({ ...cluster, machines: cluster.machines.map((m) => (m.name === 'm4' ? { ...m, drained: false } : m)) });
    expect(open.moves.map((m) => `${m.store}:${m.to}`)).toEqual(['s1:m4', 's2:m3']); // the emptiest first
    expect(open.short).toEqual([]);
    expect(open.sentence).toBe('2 replica move(s) bring 1 machine(s) to their fan-out (target 3)');
  });

  it('leaves a cluster at its fan-out alone', () => {
    const cluster: PlanCluster = { machines: [machine('m1'), machine('m2'), machine('m3')], stores: [{ name: 's1', master: 'm1', replica: 'm2' }, { name: 's2', master: 'm2', replica: 'm3' }] };
    expect(planFanOut(cluster)).toMatchObject({ moves: [], short: [], sentence: 'every machine has its fan-out (target 2): nothing to move' });
  });

  it('never loses a peer, never puts both slots on one machine, never overfills, drained or down machines get nothing', () => {
    const arb = fc
      .tuple(fc.integer({ min: 2, max: 7 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 7, maxLength: 7 }), fc.array(fc.integer({ min: 2, max: 8 }), { minLength: 7, maxLength: 7 }))
      .map(([n, pairs, flags, slots]): PlanCluster => {
        const machines = Array.from({ length: n }, (_, i) => machine(`m${i + 1}`, { slots: slots[i]! + 4, drained: flags[i] === 0 && i > 0, down: flags[i] === 1 && i > 1, rack: `r${flags[i]! % 2}` }));
        const stores = pairs.map(([a, b], k) => {
          const master = a % n;
          const replica = (master + 1 + (b % (n - 1))) % n;
          return { name: `s${k + 1}`, master: machines[master]!.name, replica: machines[replica]!.name };
        });
        return { machines, stores };
      });
    fc.assert(
      fc.property(arb, (cluster) => {
        const plan = planFanOut(cluster);
        const before = countByMachine(cluster);
        const after = structuredClone(cluster);
        for (const m of plan.moves) {
          const s = after.stores.find((x) => x.name === m.store)!;
          expect(s.replica).toBe(m.from);
          s.replica = m.to;
        }
        const counts = countByMachine(after);
        for (const s of after.stores) expect(s.master).not.toBe(s.replica);
        for (const m of plan.moves) {
          const to = cluster.machines.find((x) => x.name === m.to)!;
          expect(to.drained || to.down).toBe(false);
          const master = cluster.machines.find((x) => x.name === cluster.stores.find((s) => s.name === m.store)!.master)!;
          expect(to.rack, `${m.store} moved into its master's rack`).not.toBe(master.rack);
        }
        for (const m of cluster.machines) {
          const b = before.get(m.name)!;
          const a = counts.get(m.name)!;
          expect(a.peers.size).toBeGreaterThanOrEqual(b.peers.size);
          // no wasted move: each move of its stores' replicas gained it a peer
          const mine = plan.moves.filter((x) => cluster.stores.find((s) => s.name === x.store)!.master === m.name).length;
          expect(a.peers.size - b.peers.size).toBe(mine);
          // a machine that received replicas stays within its slots
          if (a.replicas > b.replicas) expect(a.masters + a.replicas).toBeLessThanOrEqual(m.slots);
        }
        // every machine left below its own target is named, with why
        for (const m of plan.after) if (!m.down && m.fanOut < m.target) expect(plan.short.map((x) => x.machine)).toContain(m.machine);
      }),
      { numRuns: 300 },
    );
  });
});
