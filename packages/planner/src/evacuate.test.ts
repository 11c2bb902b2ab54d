// Emptying a live machine (evacuate) and filling a declared empty one (machine add --apply): examples and properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countByMachine, planEvacuate, planFillMachine, type PlanCluster, type PlanMachine } from './index.js';

const machine = (name: string, over: Partial<PlanMachine> = {}): PlanMachine => ({ name, slots: 4, rack: '', drained: false, down: false, disks: [], ...over });
// 4 machines × 4 slots, 8 stores: each machine 2 masters, 2 replicas
const ring = (): PlanCluster => ({
  machines: ['m1', 'm2', 'm3', 'm4'].map((n) => machine(n)),
  stores: Array.from({ length: 8 }, (_, i) => ({ name: `s${i + 1}`, master: `m${(i % 4) + 1}`, replica: `m${((i + 1 + Math.floor(i / 4)) % 4) + 1}` })),
});

describe('plan evacuate', () => {
  it('switches its masters away, then moves every replica on it to a machine with room, never its master\'s', () => {
    const cluster = ring();
    cluster.machines.push(machine('m5'));
    const plan = planEvacuate(cluster, 'm1');
    expect(plan.switchovers.map((m) => `${m.store}:${m.from}->${m.to}`)).toEqual(['s1:m1->m2', 's5:m1->m3']);
    // s1 and s5 (now replicas on m1) and the two stores that kept their replica on m1
    expect(plan.replicaMoves.map((m) => m.store).sort()).toEqual(['s1', 's4', 's5', 's7']);
    const after = plan.machines.find((m) => m.machine === 'm1')!;
    expect(after).toMatchObject({ masters: 0, replicas: 0 });
    for (const m of plan.replicaMoves) expect(m.to).not.toBe('m1');
    expect(plan.unplaced).toEqual([]);
    expect(plan.sentence).toBe('m1 would hold nothing: 2 switchover(s), then 4 replica move(s)');
  });

  it('does not choose a machine whose disks cannot hold the store (the coordinator\'s measured room check)', () => {
    const cluster = ring();
    cluster.machines.push(machine('m5'), machine('m6'));
    const open = planEvacuate(cluster, 'm1');
    const full = planEvacuate(cluster, 'm1', { mayHold: (_store, m) => (m === 'm5' ? 'disk d0 on m5 would be 91% full' : undefined) });
    expect(open.replicaMoves.some((m) => m.to === 'm5')).toBe(true);
    expect(full.replicaMoves.some((m) => m.to === 'm5')).toBe(false);
    const none = planEvacuate(cluster, 'm1', { mayHold: (_store, m) => `no room on ${m}` });
    expect(none.unplaced[0]!.reason).toMatch(/has a free slot and room on its disks \(no room on m2; /);
  });

  it('names what cannot leave: busy stores, a down replica, no room', () => {
    const cluster = ring();
    cluster.machines = cluster.machines.map((m) => (m.name === 'm2' ? { ...m, down: true } : m));
    const plan = planEvacuate(cluster, 'm1', { busy: new Set(['s7']) });
    expect(plan.unplaced).toEqual(expect.arrayContaining([
      { store: 's1', reason: "its replica's machine m2 is down: the master cannot be switched over to it" },
      { store: 's7', reason: 'busy with another operation or still being seeded: evacuate again once it is done' },
    ]));
    // the full 4×4 ring has no free slot for the rest
    expect(plan.unplaced.some((u) => /has a free slot/.test(u.reason))).toBe(true);
    expect(() => planEvacuate(cluster, 'm9')).toThrow(/not in the cluster/);
    // a master whose replica stands on a drained machine cannot be switched there
    const drained = ring();
    drained.machines = drained.machines.map((m) => (m.name === 'm2' ? { ...m, drained: true } : m));
    expect(planEvacuate(drained, 'm1').unplaced).toContainEqual({ store: 's1', reason: "its replica's machine m2 is drained: no master may be placed there (slotctl machine undrain m2, or move the replica first)" });
  });

  it('never leaves a store with both slots on one machine, never puts a replica in its master\'s rack nor on a full machine, empties the machine when nothing is unplaced (random clusters)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 7 }), fc.integer({ min: 2, max: 12 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), (n, storeCount, seed, racks) => {
        const machines = Array.from({ length: n }, (_, i) => machine(`m${i + 1}`, { slots: 8, rack: racks ? `r${i % 2}` : '' }));
        const stores = Array.from({ length: storeCount }, (_, i) => {
          const a = (seed + i) % n;
          let b = (seed * 7 + i * 3 + 1) % n;
          if (b === a || (racks && b % 2 === a % 2)) b = (a + 1) % n;
          return { name: `s${i}`, master: `m${a + 1}`, replica: `m${b + 1}` };
        });
        const plan = planEvacuate({ machines, stores }, 'm1');
        const final = new Map(stores.map((s) => [s.name, { ...s }]));
        for (const m of plan.switchovers) Object.assign(final.get(m.store)!, { master: m.to, replica: m.from });
        for (const m of plan.replicaMoves) final.get(m.store)!.replica = m.to;
        for (const s of final.values()) {
          expect(s.master).not.toBe(s.replica);
          if (racks && plan.replicaMoves.some((m) => m.store === s.name)) expect(machines.find((m) => m.name === s.replica)!.rack).not.toBe(machines.find((m) => m.name === s.master)!.rack);
        }
        if (plan.unplaced.length === 0) expect([...final.values()].some((s) => s.master === 'm1' || s.replica === 'm1')).toBe(false);
        // a machine never gets more slots than it may run (one already over, as random input may be, gets none)
        const before = countByMachine({ machines, stores });
        for (const [name, c] of countByMachine({ machines, stores: [...final.values()] })) {
          const had = before.get(name)!.masters + before.get(name)!.replicas;
          expect(c.masters + c.replicas).toBeLessThanOrEqual(Math.max(had, 8));
        }
      }),
    );
  });
});

describe('plan fill machine (machine add --apply)', () => {
  it('moves replicas to a declared empty machine, then gives it its share of masters', () => {
    const cluster = ring();
    cluster.machines.push(machine('m5'));
    const plan = planFillMachine(cluster, 'm5');
    expect(plan.newStores).toEqual([]);
    expect(plan.replicaMoves.length).toBeGreaterThan(0);
    for (const m of plan.replicaMoves) expect(m.to).toBe('m5');
    // the replicas come from several masters: m5 becomes a peer of each
    expect(new Set(plan.replicaMoves.map((m) => cluster.stores.find((s) => s.name === m.store)!.master)).size).toBe(plan.replicaMoves.length);
    const m5 = plan.machines.find((m) => m.machine === 'm5')!;
    expect(m5.masters).toBeGreaterThan(0);
    expect(m5.masters + m5.replicas).toBe(plan.replicaMoves.length);
    for (const s of plan.switchovers) expect(s.to).toBe('m5');
  });

  it('leaves busy stores and stores whose master stands in its rack where they are', () => {
    const cluster = ring();
    cluster.machines = cluster.machines.map((m) => ({ ...m, rack: m.name === 'm1' ? 'r1' : 'r2' }));
    cluster.machines.push(machine('m5', { rack: 'r1' }));
    const plan = planFillMachine(cluster, 'm5', { busy: new Set(['s2']) });
    expect(plan.replicaMoves.length).toBeGreaterThan(0);
    for (const m of plan.replicaMoves) {
      expect(m.store).not.toBe('s2');
      expect(cluster.stores.find((s) => s.name === m.store)!.master).not.toBe('m1');
    }
  });

  it('refuses a machine not declared, one that holds slots, a drained one', () => {
    const cluster = ring();
    expect(() => planFillMachine(cluster, 'm9')).toThrow(/not in the cluster/);
    expect(() => planFillMachine(cluster, 'm1')).toThrow(/already holds 4 slot/);
    cluster.machines.push(machine('m5', { drained: true }));
    expect(() => planFillMachine(cluster, 'm5')).toThrow(/drained/);
  });
});
