// slotctl verbs for placement: plan layout | whatif | rebalance, machine add (a plan), machine retire (re-replication).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ValidationError, parseDuration, type OperationInfo__Output } from '@slotctl/shared';
import { parseCluster } from '@slotctl/shared/cluster-spec';
import { DEFAULT_SLOT_SIZE, clusterFromSpec, planLayout, type AddMachinePlan, type LayoutPlan, type RebalancePlan, type WhatIfPlan } from '@slotctl/planner';
import type { Admin } from './client.js';
import { follow } from './operations.js';
import { addMachineText, layoutText, rebalanceText, whatIfText } from './plan-format.js';

type WithAdmin = <T>(fn: (a: Admin) => Promise<T>) => Promise<T>;

const EXIT_ERROR = 1;

function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ValidationError(`${what} "${text}" is not a positive whole number`);
  return n;
}

/** `--disk ssd0:ssd:2TB` (name:class:size; class and size optional). */
function parseDisk(text: string, all: { name: string; class: string; size?: string }[] = []): { name: string; class: string; size?: string }[] {
  const [name, cls = 'hdd', size] = text.split(':');
  if (!name || !['ssd', 'hdd', 'nvme'].includes(cls)) throw new ValidationError(`--disk "${text}" is not NAME[:CLASS[:SIZE]]`, { hint: 'e.g. --disk ssd0:ssd:2TB --disk hdd0:hdd:16TB' });
  return [...all, { name, class: cls, ...(size ? { size } : {}) }];
}

function readLayoutFile(file: string): ReturnType<typeof clusterFromSpec> {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const parsed = parseCluster(text);
  if (!parsed.spec) {
    throw new ValidationError(`${file} is not a valid cluster description:\n${parsed.problems.map((p) => `  line ${p.line}: ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}`, { hint: 'see deploy/cluster.example.yaml' });
  }
  return clusterFromSpec(parsed.spec, DEFAULT_SLOT_SIZE);
}

async function followOne(a: Admin, op: OperationInfo__Output, json: boolean, timeoutMs: number): Promise<void> {
  const end = await follow(a, op.id, json, timeoutMs);
  if (end.state !== 'succeeded') process.exitCode = EXIT_ERROR;
}

export function registerPlacementCommands(program: Command, nouns: { machine: Command }, withAdmin: WithAdmin, printJson: (v: unknown) => void): void {
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
      if (result.lostStores.length) process.exitCode = EXIT_ERROR;
    });

  plan
    .command('rebalance')
    .description(
      'The fewest switchovers that bring every up, undrained machine to its share of masters (by slot count; equal ' +
        'machines differ by at most one), e.g. after a failover or an undrain. Never onto a drained or down machine; ' +
        'busy stores are left alone. --apply runs them as one resumable operation, a few at a time.',
    )
    .option('--apply', 'run the switchovers (one operation: slotctl operations show ID)')
    .option('--parallel <n>', 'with --apply: switchovers at once', '2')
    .option('--no-wait', 'with --apply: start it and return at once')
    .option('--timeout <duration>', 'with --apply: stop waiting after this long', '30m')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl plan rebalance\n  slotctl plan rebalance --apply')
    .action(async (opts: { apply?: boolean; parallel: string; wait: boolean; timeout: string; json?: boolean }) => {
      await withAdmin(async (a) => {
        const reply = await a.plan({ kind: 'rebalance', apply: !!opts.apply, parallel: positive(opts.parallel, '--parallel') });
        const result = JSON.parse(reply.planJson) as RebalancePlan;
        if (!opts.apply || !reply.operation) {
          if (opts.json) printJson({ ...result, operation: null });
          else process.stdout.write(`${rebalanceText(result)}\n${opts.apply ? 'nothing to do\n' : result.moves.length ? '\nrun them with: slotctl plan rebalance --apply\n' : ''}`);
          return;
        }
        if (!opts.json) process.stdout.write(`${rebalanceText(result)}\n\nrebalance started: ${reply.operation.id}\n`);
        if (!opts.wait) {
          if (opts.json) printJson({ ...result, operation: reply.operation });
          return;
        }
        await followOne(a, reply.operation, !!opts.json, parseDuration(opts.timeout, '--timeout'));
      });
    });

  nouns.machine
    .command('add')
    .description(
      'Plan what a new machine should hold so that balance and fan-out improve: new stores paired with machines that ' +
        'have free slots, or (a full cluster) replicas moved to it from the fullest machines, then the switchovers that ' +
        'give it its share of masters. Prints the plan; declare the machine and its stores with slotctl cluster apply, ' +
        'then slotctl plan rebalance --apply.',
    )
    .argument('<name>', 'the new machine')
    .option('--slots <n>', 'how many slots it may run', '18')
    .option('--rack <rack>', 'its rack (or zone)')
    .option('--disk <name:class:size>', 'a disk (repeat): e.g. ssd0:ssd:2TB, hdd0:hdd:16TB', parseDisk)
    .option('--prefix <prefix>', 'new store names: PREFIX + number', 's')
    .option('--json', 'print the plan as JSON')
    .addHelpText('after', '\nExamples:\n  slotctl machine add m9 --slots 18 --rack r2 --disk ssd0:ssd:2TB --disk hdd0:hdd:16TB')
    .action(async (name: string, opts: { slots: string; rack?: string; disk?: { name: string; class: string; size?: string }[]; prefix: string; json?: boolean }) => {
      const machineJson = JSON.stringify({ name, slots: positive(opts.slots, '--slots'), rack: opts.rack ?? '', disks: opts.disk ?? [] });
      const result = JSON.parse((await withAdmin((a) => a.plan({ kind: 'add-machine', machineJson, prefix: opts.prefix }))).planJson) as AddMachinePlan;
      if (opts.json) printJson(result);
      else process.stdout.write(`${addMachineText(result)}\n`);
    });

  nouns.machine
    .command('retire')
    .description(
      'A down machine will not return: mark it retired and give every store it leaves without a replica a new ' +
        'replica slot on a peer (chosen to keep fan-out and balance): the slot takes the old one\'s IP and paths, the ' +
        "master copies every user to it (sync_client -u), every mailbox is compared on both, and only then may it be " +
        "promoted. The old slots' files stay on the retired machine's disks until you remove them. Run it again to " +
        'resume what failed. Stores still mastered on the machine must be failed over first.',
    )
    .argument('<machine>', 'the down machine')
    .option('--dry-run', 'print the new replicas and why it would be refused; change nothing')
    .option('--no-wait', 'start the re-replications and return at once')
    .option('--timeout <duration>', 'per store: stop waiting after this long', '60m')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl machine retire m3 --dry-run\n  slotctl machine retire m3')
    .action(async (name: string, opts: { dryRun?: boolean; wait: boolean; timeout: string; json?: boolean }) => {
      await withAdmin(async (a) => {
        const reply = await a.retireMachine({ machine: name, dryRun: !!opts.dryRun });
        if (reply.dryRun || reply.operations.length === 0) {
          if (opts.json) printJson({ machine: name, wouldRun: reply.problems.length === 0, problems: reply.problems, plan: reply.plan });
          else {
            process.stdout.write(`retire ${name}${reply.dryRun ? ' (dry run)' : ''}: ${reply.problems.length ? 'REFUSED or incomplete' : reply.plan.length ? 'would run' : 'nothing to re-replicate'}\n`);
            for (const p of reply.problems) process.stdout.write(`  problem: ${p}\n`);
            for (const l of reply.plan) process.stdout.write(`  ${l}\n`);
          }
          if (reply.problems.length) process.exitCode = EXIT_ERROR;
          return;
        }
        for (const p of reply.problems) process.stderr.write(`slotctl: ${p}\n`);
        if (!opts.wait) {
          if (opts.json) printJson(reply.operations);
          else for (const op of reply.operations) process.stdout.write(`re-replication of ${op.store} started: ${op.id}\n`);
          return;
        }
        for (const op of reply.operations) {
          if (!opts.json) process.stdout.write(`re-replication of ${op.store}: ${op.id}\n`);
          await followOne(a, op, !!opts.json, parseDuration(opts.timeout, '--timeout'));
        }
      });
    });
}
