// bench/layout: the planner on a large cluster. layout of 1,000 machines × 18 slots (4 racks, an ssd and an hdd per
// machine) from empty — goal < 2 s; whatif --lose one machine and rebalance (balanced, and after that machine's
// failover and return) on the result — goal < 200 ms each. Pure computation, no I/O: p50 and max over --runs runs.
// Writes bench/results/layout.json.
//
//   npm run bench:layout -- [--runs 5] [--machines 1000] [--slots 18]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { planLayout, planRebalance, whatIf, type PlanCluster, type PlanMachine } from '@slotctl/planner';
import { ROOT } from '../tools/local-cluster.js';
import { benchArg } from './common.js';

const runs = Number(benchArg('runs', '5'));
const machineCount = Number(benchArg('machines', '1000'));
const slots = Number(benchArg('slots', '18'));

const machines: PlanMachine[] = Array.from({ length: machineCount }, (_, i) => ({
  name: `m${String(i + 1).padStart(4, '0')}`,
  slots,
  rack: `r${i % 4}`,
  drained: false,
  down: false,
  disks: [
    { name: 'ssd0', class: 'ssd', capacityBytes: 2e12, usedBytes: 0 },
    { name: 'hdd0', class: 'hdd', capacityBytes: 16e12, usedBytes: 0 },
  ],
}));

function time<T>(fn: () => T): { ms: number; value: T } {
  const t = performance.now();
  const value = fn();
  return { ms: performance.now() - t, value };
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: Math.round(s[Math.floor((s.length - 1) / 2)]! * 10) / 10, max: Math.round(s[s.length - 1]! * 10) / 10, runs: s.length };
};

const layoutMs: number[] = [];
const whatifMs: number[] = [];
const rebalanceMs: number[] = [];
const rebalanceAfterMs: number[] = [];
let summary = { stores: 0, minFanOut: 0, maxFanOut: 0, mastersMin: 0, mastersMax: 0, sameRack: 0, whatifWorst: 0, rebalanceMoves: 0, rebalanceAfterMoves: 0 };

for (let run = 0; run < runs; run++) {
  const layout = time(() => planLayout({ machines, stores: [] }));
  layoutMs.push(layout.ms);
  const cluster: PlanCluster = { machines, stores: layout.value.stores.map((s) => ({ name: s.store, master: s.master.machine, replica: s.replica.machine })) };
  const lost = machines[run % machines.length]!.name;
  const w = time(() => whatIf(cluster, [lost]));
  whatifMs.push(w.ms);
  const r = time(() => planRebalance(cluster));
  rebalanceMs.push(r.ms);
  const failedOver: PlanCluster = { machines, stores: cluster.stores.map((s) => (s.master === lost ? { ...s, master: s.replica, replica: s.master } : s)) };
  const r2 = time(() => planRebalance(failedOver));
  rebalanceAfterMs.push(r2.ms);
  const fan = layout.value.machines.map((m) => m.fanOut);
  const masters = layout.value.machines.map((m) => m.masters);
  const rack = new Map(machines.map((m) => [m.name, m.rack]));
  summary = {
    stores: cluster.stores.length,
    minFanOut: Math.min(...fan),
    maxFanOut: Math.max(...fan),
    mastersMin: Math.min(...masters),
    mastersMax: Math.max(...masters),
    sameRack: cluster.stores.filter((s) => rack.get(s.master) === rack.get(s.replica)).length,
    whatifWorst: w.value.worstIncrease?.increase ?? 0,
    rebalanceMoves: r.value.moves.length,
    rebalanceAfterMoves: r2.value.moves.length,
  };
  console.log(`run ${run + 1}: layout ${layout.ms.toFixed(0)} ms (${summary.stores} stores), whatif ${w.ms.toFixed(1)} ms, rebalance ${r.ms.toFixed(1)} ms (${summary.rebalanceMoves} moves), after failover of ${lost} ${r2.ms.toFixed(1)} ms (${summary.rebalanceAfterMoves} moves)`);
}

const result = {
  benchmark: 'layout',
  at: new Date().toISOString(),
  host: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
  cluster: { machines: machineCount, slotsPerMachine: slots, racks: 4 },
  goals: { layoutMs: 2000, whatifMs: 200, rebalanceMs: 200 },
  layoutMs: stats(layoutMs),
  whatifMs: stats(whatifMs),
  rebalanceBalancedMs: stats(rebalanceMs),
  rebalanceAfterFailoverMs: stats(rebalanceAfterMs),
  ...summary,
};
console.log(
  `\nlayout ${machineCount} × ${slots}: p50 ${result.layoutMs.p50} ms (max ${result.layoutMs.max}; goal < 2000) — ${summary.stores} stores, fan-out ${summary.minFanOut}–${summary.maxFanOut}, masters ${summary.mastersMin}–${summary.mastersMax} per machine, ${summary.sameRack} store(s) in one rack` +
    `\nwhatif --lose one: p50 ${result.whatifMs.p50} ms (max ${result.whatifMs.max}; goal < 200), worst increase +${summary.whatifWorst}` +
    `\nrebalance: balanced p50 ${result.rebalanceBalancedMs.p50} ms (${summary.rebalanceMoves} moves); after a failover p50 ${result.rebalanceAfterFailoverMs.p50} ms (max ${result.rebalanceAfterFailoverMs.max}; goal < 200), ${summary.rebalanceAfterMoves} moves`,
);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'layout.json'), `${JSON.stringify(result, null, 2)}\n`);
