// Pure: what losing machines would do. Every store mastered on a lost machine is promoted on its replica's machine
// (if that one is not lost too); the answer is the masters per remaining machine before and after, the worst
// increase, the stores left without a replica and the stores lost entirely (both slots on lost machines).
import { ValidationError } from '@slotctl/shared/base';
import { byName, type PlanCluster } from './model.js';

export interface WhatIfMachine {
  machine: string;
  mastersBefore: number;
  mastersAfter: number;
  increase: number;
  /** The lost machines whose stores it would take over, with how many. */
  takesFrom: Record<string, number>;
}

export interface WhatIfPlan {
  lost: string[];
  machines: WhatIfMachine[];
  worstIncrease: { machine: string; increase: number; mastersBefore: number; mastersAfter: number } | undefined;
  /** Stores that keep serving but have no replica any more. */
  withoutReplica: string[];
  /** Stores whose master and replica are both on lost machines: down until one returns. */
  lostStores: string[];
  promoted: number;
  sentence: string;
}

export function whatIf(cluster: PlanCluster, lose: readonly string[]): WhatIfPlan {
  const names = new Set(cluster.machines.map((m) => m.name));
  const unknown = lose.filter((m) => !names.has(m));
  if (unknown.length) throw new ValidationError(`unknown machine(s): ${unknown.join(', ')}`, { hint: 'list machines with `slotctl machine list`' });
  if (lose.length === 0) throw new ValidationError('name at least one machine to lose', { hint: 'e.g. --lose m1 or --lose m1,m2' });
  const lost = new Set(lose);
  const before = new Map<string, number>();
  const after = new Map<string, number>();
  const takes = new Map<string, Record<string, number>>();
  for (const m of cluster.machines) {
    if (lost.has(m.name)) continue;
    before.set(m.name, 0);
    after.set(m.name, 0);
    takes.set(m.name, {});
  }
  const withoutReplica: string[] = [];
  const lostStores: string[] = [];
  let promoted = 0;
  for (const s of cluster.stores) {
    const masterLost = lost.has(s.master);
    const replicaLost = lost.has(s.replica);
    if (!masterLost) {
      before.set(s.master, (before.get(s.master) ?? 0) + 1);
      after.set(s.master, (after.get(s.master) ?? 0) + 1);
      if (replicaLost) withoutReplica.push(s.name);
    } else if (!replicaLost) {
      after.set(s.replica, (after.get(s.replica) ?? 0) + 1);
      const t = takes.get(s.replica)!;
      t[s.master] = (t[s.master] ?? 0) + 1;
      withoutReplica.push(s.name);
      promoted++;
    } else {
      lostStores.push(s.name);
    }
  }
  const machines: WhatIfMachine[] = [...before.keys()].sort(byName).map((machine) => ({
    machine,
    mastersBefore: before.get(machine)!,
    mastersAfter: after.get(machine)!,
    increase: after.get(machine)! - before.get(machine)!,
    takesFrom: Object.fromEntries(Object.entries(takes.get(machine)!).sort(([a], [b]) => byName(a, b))),
  }));
  let worst: WhatIfMachine | undefined;
  for (const m of machines) if (!worst || m.increase > worst.increase) worst = m;
  const worstIncrease = worst ? { machine: worst.machine, increase: worst.increase, mastersBefore: worst.mastersBefore, mastersAfter: worst.mastersAfter } : undefined;
  const takers = machines.filter((m) => m.increase > 0).length;
  const sentence =
    `losing ${[...lost].join(', ')}: ${promoted} store(s) promoted on ${takers} machine(s)` +
    (worstIncrease && worstIncrease.increase > 0 ? `, the worst ${worstIncrease.machine} going from ${worstIncrease.mastersBefore} to ${worstIncrease.mastersAfter} masters` : '') +
    `; ${withoutReplica.length} store(s) left without a replica` +
    (lostStores.length ? `; ${lostStores.length} store(s) LOST until a machine returns (${lostStores.slice(0, 10).join(', ')}${lostStores.length > 10 ? ', …' : ''})` : '; no store lost');
  return { lost: [...lost], machines, worstIncrease, withoutReplica: withoutReplica.sort(byName), lostStores: lostStores.sort(byName), promoted, sentence };
}
