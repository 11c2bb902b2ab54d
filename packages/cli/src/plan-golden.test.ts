// Golden scenarios, like Pacemaker's scheduler tests: plan-golden/NAME.yaml holds a cluster, optional preparation
// (a layout, a failover, a drain, a return) and one planner action; plan-golden/NAME.txt holds the expected answer
// exactly as slotctl prints it. UPDATE_GOLDEN=1 rewrites the .txt files (read the diff before committing it); in CI
// it is ignored and a missing .txt fails. They live with slotctl, not in the planner package, because they pin the
// planner's answers and slotctl's text of them together, and the planner must not depend on slotctl.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { parseSize } from '@slotctl/shared';
import { planAddMachine, planFanOut, planLayout, planRebalance, planReReplication, whatIf, type PlanCluster, type PlanMachine } from '@slotctl/planner';
import { expectGolden } from '../../../test/support/golden.js';
import { addMachineText, fanOutText, layoutText, rebalanceText, replicaMovesTable, whatIfText } from './plan-format.js';

const dir = join(import.meta.dirname, 'plan-golden');

const disk = z.strictObject({ name: z.string(), class: z.enum(['ssd', 'hdd', 'nvme']).default('hdd'), size: z.union([z.string(), z.number()]).optional(), used: z.union([z.string(), z.number()]).default(0) });
const machine = z.strictObject({ name: z.string(), slots: z.number().int().default(18), rack: z.string().default(''), drained: z.boolean().default(false), down: z.boolean().default(false), disks: z.array(disk).default([]) });
const scenario = z.strictObject({
  description: z.string(),
  machines: z.array(machine),
  stores: z.array(z.strictObject({ name: z.string(), master: z.string(), replica: z.string() })).default([]),
  prepare: z.array(z.strictObject({ layout: z.strictObject({ count: z.number().optional() }).optional(), failover: z.string().optional(), drain: z.string().optional(), return: z.string().optional() })).default([]),
  action: z.enum(['layout', 'whatif', 'rebalance', 'add-machine', 'rereplicate', 'fanout']),
  options: z.strictObject({ count: z.number().optional(), lose: z.array(z.string()).optional(), machine: machine.optional(), retire: z.string().optional() }).default({}),
});

function toMachine(m: z.infer<typeof machine>): PlanMachine {
  return { ...m, disks: m.disks.map((d) => ({ name: d.name, class: d.class, capacityBytes: d.size === undefined ? Infinity : parseSize(d.size), usedBytes: parseSize(d.used) })) };
}

export function runScenario(text: string): string {
  const s = scenario.parse(parse(text));
  let cluster: PlanCluster = { machines: s.machines.map(toMachine), stores: s.stores };
  for (const step of s.prepare) {
    if (step.layout) {
      const plan = planLayout(cluster, step.layout);
      cluster = { ...cluster, stores: [...cluster.stores, ...plan.stores.map((p) => ({ name: p.store, master: p.master.machine, replica: p.replica.machine }))] };
    }
    if (step.failover) {
      const lost = step.failover;
      cluster = {
        machines: cluster.machines.map((m) => (m.name === lost ? { ...m, down: true } : m)),
        stores: cluster.stores.map((x) => (x.master === lost ? { ...x, master: x.replica, replica: x.master } : x)),
      };
    }
    if (step.drain) cluster.machines = cluster.machines.map((m) => (m.name === step.drain ? { ...m, drained: true } : m));
    if (step.return) cluster.machines = cluster.machines.map((m) => (m.name === step.return ? { ...m, down: false, drained: false } : m));
  }
  const head = `# ${s.description}\n# action: ${s.action}\n\n`;
  switch (s.action) {
    case 'layout':
      return head + layoutText(planLayout(cluster, { count: s.options.count }));
    case 'whatif':
      return head + whatIfText(whatIf(cluster, s.options.lose ?? []));
    case 'rebalance':
      return head + rebalanceText(planRebalance(cluster));
    case 'add-machine':
      return head + addMachineText(planAddMachine(cluster, toMachine(s.options.machine!)));
    case 'fanout':
      return head + fanOutText(planFanOut(cluster));
    case 'rereplicate': {
      const plan = planReReplication(cluster, s.options.retire!);
      return head + replicaMovesTable(plan.moves) + (plan.unplaced.length ? `\n\nnot placed:\n${plan.unplaced.map((u) => `  - ${u.store}: ${u.reason}`).join('\n')}` : '');
    }
  }
}

describe('planner golden scenarios', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
  it('has at least ten scenarios', () => {
    expect(files.length).toBeGreaterThanOrEqual(10);
  });
  for (const file of files) {
    it(file.replace(/\.yaml$/, ''), () => {
      const actual = runScenario(readFileSync(join(dir, file), 'utf8')) + '\n';
      expectGolden(join(dir, file.replace(/\.yaml$/, '.txt')), actual);
    });
  }
});
