// slotctl machine …: every verb about machines, in the order `slotctl machine --help` lists them: list; planned
// moves (drain, undrain); machine loss (failover, recover); placement (add, a plan; retire, re-replication).
import type { Command } from 'commander';
import { ValidationError, parseDuration } from '@slotctl/shared';
import type { AddMachinePlan, EvacuatePlan } from '@slotctl/planner';
import { EXIT, positive, printJson, type WithAdmin } from '../context.js';
import { follow, followAll, followOne, printPreview } from '../follow.js';
import { machinesTable } from '../format.js';
import { addMachineText, evacuateText } from '../plan-format.js';
import { applyOptions, planOrApply, type ApplyOptions } from './plan.js';
import { WIDE_HELP, outputWidth } from '../table-fit.js';
import { RECOVER_HELP, recoverAction } from '../recovery.js';

interface DiskOption {
  name: string;
  class: string;
  size?: string;
}

/** `--disk ssd0:ssd:2TB` (name:class:size; class and size optional). */
function parseDisk(text: string, all: DiskOption[] = []): DiskOption[] {
  const [name, cls = 'hdd', size] = text.split(':');
  if (!name || !['ssd', 'hdd', 'nvme'].includes(cls)) throw new ValidationError(`--disk "${text}" is not NAME[:CLASS[:SIZE]]`, { hint: 'e.g. --disk ssd0:ssd:2TB --disk hdd0:hdd:16TB' });
  return [...all, { name, class: cls, ...(size ? { size } : {}) }];
}

export function registerMachineCommands(program: Command, withAdmin: WithAdmin): void {
  const machine = program.command('machine').description('Machines (mail hosts, one agent each).');

  machine
    .command('list')
    .description('Machines with liveness, agent connection and slot counts.')
    .option('--json', 'print as JSON')
    .option('--wide', WIDE_HELP)
    .action(async (opts: { json?: boolean; wide?: boolean }) => {
      const reply = await withAdmin((a) => a.listMachines());
      if (opts.json) printJson(reply.machines);
      else process.stdout.write(`${machinesTable(reply.machines, outputWidth(opts))}\n`);
    });

  machine
    .command('drain')
    .description(
      'Move every master off a machine (before an upgrade): one switchover per store whose master is on it, to that ' +
        "store's replica, a few at a time. The machine is marked drained first: nothing puts a master on it until " +
        '`slotctl machine undrain`. Follows the progress and ends with a summary; exit 1 if any store was not moved.',
    )
    .argument('<machine>', 'machine name')
    .option('--parallel <n>', 'switchovers at once', '2')
    .option('--timeout <duration>', 'per switchover: roll it back if not flipped within this long', '120s')
    .option('--no-wait', 'start the drain and return at once')
    .option('--dry-run', 'list the stores that would move; change nothing')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl machine drain m3 --dry-run\n  slotctl machine drain m3 --parallel 4\n  slotctl machine undrain m3')
    .action(async (name: string, opts: { parallel: string; timeout: string; wait: boolean; dryRun?: boolean; json?: boolean }) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      await withAdmin(async (a) => {
        const reply = await a.drainMachine({ machine: name, parallel: Number(opts.parallel), timeoutMs, dryRun: !!opts.dryRun });
        if (reply.dryRun) {
          if (opts.json) printJson({ machine: name, plan: reply.plan });
          else process.stdout.write(`drain of ${name} (dry run): ${reply.plan.length} store(s) would move\n${reply.plan.map((l) => `  ${l}`).join('\n')}\n`);
          return;
        }
        const op = reply.operation!;
        if (!opts.wait) {
          if (opts.json) printJson(op);
          else process.stdout.write(`drain of ${name} started: ${op.id} (follow: slotctl operations show ${op.id} --wait)\n`);
          return;
        }
        if (!opts.json) process.stdout.write(`drain of ${name}: ${op.id}, ${reply.plan.length} store(s), ${opts.parallel} at a time\n`);
        await follow(a, op.id, !!opts.json, (reply.plan.length + 1) * (timeoutMs + 120_000));
      });
    });

  machine
    .command('undrain')
    .description('Allow masters on a drained machine again. Moves nothing back by itself: use switchovers (or a rebalance).')
    .argument('<machine>', 'machine name')
    .option('--json', 'print the machine as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const reply = await withAdmin((a) => a.undrainMachine(name));
      if (opts.json) printJson(reply.machine);
      else process.stdout.write(`machine ${name}: undrained; masters may be placed on it again\n`);
    });

  machine
    .command('failover')
    .description(
      "Promote the replicas of a down machine's masters now, on the machines that hold them (each store: epoch + 1; " +
        "the old master's last backlog is recorded as at risk). The coordinator does this by itself for one lost " +
        'machine; when more machines are down at once it waits for an operator: --force says you know the machine is ' +
        'gone, not cut off by a network fault.',
    )
    .argument('<machine>', 'the down machine')
    .option('--force', 'fail over even though more machines are down at once than automatic failover allows')
    .option('--dry-run', 'print what would be promoted and why it would be refused; change nothing')
    .option('--no-wait', 'start the failovers and return at once')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl machine failover m3 --dry-run\n  slotctl machine failover m3 --force\n  slotctl store at-risk')
    .action(async (name: string, opts: { force?: boolean; dryRun?: boolean; wait: boolean; json?: boolean }) => {
      await withAdmin(async (a) => {
        const reply = await a.failoverMachine({ machine: name, force: !!opts.force, dryRun: !!opts.dryRun });
        if (reply.dryRun || reply.problems.length && reply.operations.length === 0) return printPreview(`failover of ${name}${reply.dryRun ? ' (dry run)' : ''}`, reply, !!opts.json, { machine: name });
        for (const p of reply.problems) process.stderr.write(`slotctl: ${p}\n`);
        if (!opts.wait) {
          if (opts.json) printJson(reply.operations);
          else for (const op of reply.operations) process.stdout.write(`failover of ${op.store} started: ${op.id}\n`);
          return;
        }
        await followAll(a, reply.operations, !!opts.json, 120_000);
      });
    });

  machine
    .command('recover')
    .description(`Recover every store with an open at-risk record on this (returned) machine (all at once). ${RECOVER_HELP}`)
    .argument('<machine>', 'the returned machine')
    .option('--dry-run', 'print the steps and why each would be refused; change nothing')
    .option('--no-wait', 'start them and return at once')
    .option('--timeout <duration>', 'per store: stop waiting after this long', '15m')
    .option('--json', 'print JSON (while following: one object per line)')
    .action(recoverAction('machine', withAdmin));

  applyOptions(
    machine
      .command('add')
      .description(
        'What a new machine should hold so that balance and fan-out improve. For a machine declared in the cluster ' +
          '(slotctl cluster apply) that holds nothing yet: the replicas moved to it from the fullest machines (each ' +
          'seeded from its master while the old replica keeps replicating), then the switchovers that give it its share ' +
          'of masters; --apply runs that as one resumable operation. For a machine not yet declared (--slots, --rack, ' +
          '--disk): the plan, new stores paired with machines that have free slots included, to declare with cluster apply.',
      )
      .argument('<name>', 'the new machine')
      .option('--slots <n>', 'not yet declared: how many slots it may run (default 18)')
      .option('--rack <rack>', 'not yet declared: its rack (or zone)')
      .option('--disk <name:class:size>', 'not yet declared: a disk (repeat): e.g. ssd0:ssd:2TB, hdd0:hdd:16TB', parseDisk)
      .option('--prefix <prefix>', 'not yet declared: new store names: PREFIX + number', 's'),
    { apply: 'declared: run the moves and switchovers (one operation: slotctl operations show ID)', children: 'child operations (a move also waits for a seed slot):', timeout: '6h' },
  )
    .addHelpText('after', '\nExamples:\n  slotctl machine add m9                  # declared and empty: what would move to it\n  slotctl machine add m9 --apply\n  slotctl machine add m9 --slots 18 --rack r2 --disk ssd0:ssd:2TB --disk hdd0:hdd:16TB')
    .action(async (name: string, opts: ApplyOptions & { slots?: string; rack?: string; disk?: DiskOption[]; prefix: string }) => {
      const undeclared = opts.slots !== undefined || opts.rack !== undefined || opts.disk !== undefined;
      if (undeclared && opts.apply) throw new ValidationError('--apply fills a machine declared in the cluster; --slots, --rack and --disk plan one that is not', { hint: `declare ${name} in the cluster file, slotctl cluster apply FILE, then slotctl machine add ${name} --apply` });
      if (!undeclared) {
        await planOrApply(withAdmin, opts, { kind: 'add-machine', machine: name, text: addMachineText, what: 'machine add', again: `slotctl machine add ${name} --apply`, empty: (p: AddMachinePlan) => p.replicaMoves.length + p.switchovers.length === 0 });
        return;
      }
      const machineJson = JSON.stringify({ name, slots: positive(opts.slots ?? '18', '--slots'), rack: opts.rack ?? '', disks: opts.disk ?? [] });
      const result = JSON.parse((await withAdmin((a) => a.plan({ kind: 'add-machine', machineJson, prefix: opts.prefix }))).planJson) as AddMachinePlan;
      if (opts.json) printJson(result);
      else process.stdout.write(`${addMachineText(result)}\n`);
    });

  applyOptions(
    machine
      .command('evacuate')
      .description(
        'Take everything off a live machine before it is replaced: it is marked drained, every master on it is switched ' +
          'over to its replica, then every replica on it is moved to a peer (seeded from the master while the old ' +
          'replica keeps replicating; fan-out kept, never the master\'s rack), as one resumable operation. A store never ' +
          'has fewer than two up-to-date copies during it. Refused while a store on it is busy or still being seeded. ' +
          'The old slots\' files stay on the machine until you remove them; undrain it to use it again.',
      )
      .argument('<machine>', 'the machine to empty'),
    { children: 'child operations (a move also waits for a seed slot, --max-seeds):', timeout: '6h' },
  )
    .addHelpText('after', '\nExamples:\n  slotctl machine evacuate m3 --dry-run\n  slotctl machine evacuate m3 --parallel 2\n  slotctl operations cancel ID   # stops it; moves not yet switched are abandoned')
    .action(async (name: string, opts: ApplyOptions) => {
      await planOrApply(withAdmin, { ...opts, apply: !opts.dryRun }, { kind: 'evacuate', machine: name, text: evacuateText, what: 'evacuation', again: `slotctl machine evacuate ${name}`, empty: (p: EvacuatePlan) => p.switchovers.length + p.replicaMoves.length === 0, incomplete: (p: EvacuatePlan) => p.unplaced.length > 0 });
    });

  machine
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
          if (reply.problems.length) process.exitCode = EXIT.error;
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
