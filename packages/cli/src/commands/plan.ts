// slotctl plan …: placement, computed and explained: layout (where new stores go), whatif (what losing machines
// would do), fanout (the replica moves that spread each machine's replicas), rebalance (the fewest switchovers back
// to balance, --apply runs them). `machine add` and `machine retire`
// are planner answers too, but machine verbs: they live with the other machine verbs.
import type { Command } from 'commander';
import { ValidationError, parseDuration } from '@slotctl/shared';
import { parseCluster } from '@slotctl/shared/cluster-spec';
import { DEFAULT_SLOT_SIZE, clusterFromSpec, planLayout, type FanOutPlan, type LayoutPlan, type PlanCluster, type RebalancePlan, type WhatIfPlan } from '@slotctl/planner';
import { EXIT, positive, printJson, readFileArgument, type WithAdmin } from '../context.js';
import { followOne } from '../follow.js';
import { fanOutText, layoutText, rebalanceText, whatIfText } from '../plan-format.js';

/** A cluster file as the planner sees it, for a layout planned offline (`plan layout --machines FILE`). */
function readLayoutFile(file: string): PlanCluster {
  const parsed = parseCluster(readFileArgument(file));
  if (!parsed.spec) {
    throw new ValidationError(`${file} is not a valid cluster description:\n${parsed.problems.map((p) => `  line ${p.line}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}`, { hint: 'see deploy/cluster.example.yaml' });
  }
  return clusterFromSpec(parsed.spec, DEFAULT_SLOT_SIZE);
}

export function registerPlanCommands(program: Command, withAdmin: WithAdmin): void {
  const plan = program
    .command('plan')
    .description(
      'Placement, computed and explained: where stores should go (layout), what losing machines would do (whatif), ' +
        'the fewest switchovers that restore the balance of masters (rebalance). Replicas of each machine\'s masters ' +
        'are spread over min(5, machines − 1) peers, so that a lost machine raises each peer\'s load a little.',
    );

  plan
    .command('layout')
    .description(
      'Place new stores: both slots on different machines (different racks when labelled), the replicas of each ' +
        "machine's masters on 5 peers (or every other machine when fewer), masters and replicas balanced by slot " +
        "count, partitions fitted on the disks declared (300 GB data + 30 GB meta per slot). Existing stores stay.",
    )
    .option('--machines <file>', 'plan offline for a cluster description (machines with slots, rack, disks; stores already there) instead of the live cluster')
    .option('--count <n>', 'how many stores to add (default: as many as fit)')
    .option('--prefix <prefix>', 'new store names: PREFIX + number after the highest existing one', 's')
    .option('--no-reasons', 'leave out the column that explains each placement')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', '\nExamples:\n  slotctl plan layout --machines new-cluster.yaml\n  slotctl plan layout --count 4 --json')
    .action(async (opts: { machines?: string; count?: string; prefix: string; reasons: boolean; json?: boolean }) => {
      const count = opts.count === undefined ? undefined : positive(opts.count, '--count');
      const result: LayoutPlan = opts.machines
        ? planLayout(readLayoutFile(opts.machines), { count, prefix: opts.prefix })
        : JSON.parse((await withAdmin((a) => a.plan({ kind: 'layout', count: count ?? 0, prefix: opts.prefix }))).planJson) as LayoutPlan;
      if (opts.json) printJson(result);
      else process.stdout.write(`${layoutText(result, { reasons: opts.reasons })}\n`);
    });

  plan
    .command('whatif')
    .description(
      "What losing machines would do now: each lost master promoted on its replica's machine; masters per remaining " +
        'machine before and after, the worst increase, stores left without a replica, stores lost entirely (both ' +
        'slots on lost machines).',
    )
    .requiredOption('--lose <machines>', 'the machines lost, comma-separated (m1 or m1,m2)')
    .option('--json', 'print the answer as JSON')
    .addHelpText('after', '\nExamples:\n  slotctl plan whatif --lose m3\n  slotctl plan whatif --lose m1,m2 --json')
    .action(async (opts: { lose: string; json?: boolean }) => {
      const lose = opts.lose.split(',').map((m) => m.trim()).filter(Boolean);
      const result = JSON.parse((await withAdmin((a) => a.plan({ kind: 'whatif', lose }))).planJson) as WhatIfPlan;
      if (opts.json) printJson(result);
      else process.stdout.write(`${whatIfText(result)}\n`);
      if (result.lostStores.length) process.exitCode = EXIT.error;
    });

  applyOptions(
    plan
      .command('fanout')
      .description(
        "Over how many peers each machine's masters keep their replicas (fan-out: losing the machine spreads its load " +
          'over them), against the target min(5, machines − 1) — or its masters, when fewer — and the replica moves that ' +
          'reach it: a replica that shares its machine with another of the master\'s goes to a machine that is not yet a ' +
          'peer (up, undrained, a free slot, another rack when labelled). Busy and seeding stores are left alone. --apply ' +
          'runs the moves (slotctl store move-replica each) as one resumable operation.',
      ),
    { apply: 'run the moves (one resumable operation: slotctl operations show ID); each waits for a seed slot (--max-seeds)', children: 'moves', timeout: '6h' },
  )
    .addHelpText('after', '\nExamples:\n  slotctl plan fanout\n  slotctl plan fanout --json\n  slotctl plan fanout --apply --parallel 2')
    .action(async (opts: ApplyOptions) => planOrApply(withAdmin, opts, { kind: 'fanout', text: fanOutText, what: 'fan-out', again: 'slotctl plan fanout --apply', empty: (p: FanOutPlan) => p.moves.length === 0 }));

  applyOptions(
    plan
      .command('rebalance')
      .description(
        'The fewest switchovers that bring every up, undrained machine to its share of masters (by slot count; equal ' +
          'machines differ by at most one), e.g. after a failover or an undrain. Never onto a drained or down machine; ' +
          'busy stores are left alone. --apply runs them as one resumable operation, a few at a time.',
      ),
    { apply: 'run the switchovers (one operation: slotctl operations show ID)', children: 'switchovers', timeout: '30m' },
  )
    .addHelpText('after', '\nExamples:\n  slotctl plan rebalance\n  slotctl plan rebalance --apply')
    .action(async (opts: ApplyOptions) => planOrApply(withAdmin, opts, { kind: 'rebalance', text: rebalanceText, what: 'rebalance', again: 'slotctl plan rebalance --apply', empty: (p: RebalancePlan) => p.moves.length === 0 }));
}

export interface ApplyOptions {
  apply?: boolean;
  dryRun?: boolean;
  parallel: string;
  wait: boolean;
  timeout: string;
  json?: boolean;
}

/**
 * A plan printed, or (--apply) run as one operation and followed: rebalance, fan-out, machine add, evacuate. The
 * plan printed is the one the coordinator starts from, so what is shown is what runs.
 */
export async function planOrApply<T>(
  withAdmin: WithAdmin,
  opts: ApplyOptions,
  spec: { kind: string; machine?: string; text: (plan: T) => string; what: string; again: string; empty: (plan: T) => boolean; incomplete?: (plan: T) => boolean },
): Promise<void> {
  await withAdmin(async (a) => {
    const reply = await a.plan({ kind: spec.kind, machine: spec.machine ?? '', apply: !!opts.apply, parallel: positive(opts.parallel, '--parallel') });
    const result = JSON.parse(reply.planJson) as T;
    if (!opts.apply || !reply.operation) {
      const incomplete = spec.incomplete?.(result) ?? false;
      if (opts.json) printJson({ ...result, operation: null });
      else process.stdout.write(`${spec.text(result)}\n${opts.apply ? 'nothing to do\n' : spec.empty(result) || incomplete ? '' : `\nrun it with: ${spec.again}\n`}`);
      // a plan that cannot do everything it is for (an evacuation that leaves stores behind) is not a success
      if (incomplete) process.exitCode = EXIT.error;
      return;
    }
    if (!opts.json) process.stdout.write(`${spec.text(result)}\n\n${spec.what} started: ${reply.operation.id}\n`);
    if (!opts.wait) {
      if (opts.json) printJson({ ...result, operation: reply.operation });
      return;
    }
    await followOne(a, reply.operation, !!opts.json, parseDuration(opts.timeout, '--timeout'));
  });
}

/**
 * The options of a plan that runs as one operation: --apply (or, `apply` omitted, --dry-run: the command runs it
 * unless asked not to), --parallel, --no-wait, --timeout, --json.
 */
export function applyOptions(command: Command, o: { apply?: string; children: string; timeout: string }): Command {
  const withApply = o.apply ? 'with --apply: ' : '';
  if (o.apply) command.option('--apply', o.apply);
  else command.option('--dry-run', 'print what it would do and what stops it; change nothing');
  return command
    .option('--parallel <n>', `${withApply}${o.children} at once`, '2')
    .option('--no-wait', `${withApply}start it and return at once`)
    .option('--timeout <duration>', `${withApply}stop waiting after this long`, o.timeout)
    .option('--json', 'print JSON (while following: one object per line)');
}
