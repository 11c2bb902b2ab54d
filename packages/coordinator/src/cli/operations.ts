// slotctl verbs for planned moves: store switchover, machine drain/undrain, operations list/show/cancel. Following
// an operation polls it (every 100 ms) and prints each recorded step as it happens, or with --json one JSON object
// per line (type step | store | result) for scripts.
import type { Command } from 'commander';
import { UnavailableError, parseDuration, type OperationInfo__Output } from '@slotctl/shared';
import type { Admin } from './client.js';
import { table } from './format.js';

type WithAdmin = <T>(fn: (a: Admin) => Promise<T>) => Promise<T>;

const EXIT_ERROR = 1;

function seconds(fromIso: string, toIso: string): string {
  return `${((Date.parse(toIso) - Date.parse(fromIso)) / 1000).toFixed(2)} s`;
}

function clock(iso: string): string {
  return iso.slice(11, 23);
}

function target(op: OperationInfo__Output): string {
  return op.kind === 'drain' ? `machine ${op.machine}` : op.kind === 'rebalance' ? 'the cluster' : `store ${op.store}`;
}

function line(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function verdict(op: OperationInfo__Output): string {
  const took = seconds(op.createdAt, op.updatedAt);
  if (op.kind === 'drain' || op.kind === 'rebalance') {
    const moved = op.children.filter((c) => c.state === 'succeeded');
    const notMoved = op.children.filter((c) => c.state !== 'succeeded' && c.state !== 'running');
    const conflicts = Object.entries((JSON.parse(op.resultJson || '{}') as { conflicts?: Record<string, string> }).conflicts ?? {});
    const lines = [`${op.kind === 'drain' ? `drain of ${op.machine}` : 'rebalance'}: ${op.state} in ${took}: ${moved.length} store(s) moved, ${notMoved.length + conflicts.length} not moved`];
    for (const c of notMoved) lines.push(`  ${c.store}: ${c.state}: ${c.error}`);
    for (const [store, why] of conflicts) lines.push(`  ${store}: not started: ${why}`);
    if (op.state !== 'succeeded' && op.error && notMoved.length + conflicts.length === 0) lines.push(`  ${op.error}`);
    return lines.join('\n');
  }
  const p = JSON.parse(op.paramsJson || '{}') as { from?: string; to?: string; epoch?: number };
  if (op.kind !== 'switchover') return `${op.kind} of ${op.store}: ${op.state === 'succeeded' ? 'succeeded' : op.state.toUpperCase()} after ${took}${op.error ? `: ${op.error}` : ''}`;
  if (op.state === 'succeeded') return `switchover of ${op.store}: succeeded in ${took}: ${p.to} is master (epoch ${(p.epoch ?? 0) + 1}), ${p.from} its replica`;
  if (op.state === 'running') return `switchover of ${op.store}: running, at step ${op.step} (${op.id})`;
  return `switchover of ${op.store}: ${op.state.toUpperCase()} after ${took}: ${op.error}${op.step === 'rolled-back' ? `\n  rolled back: ${p.from} is still the master, the database is unchanged` : ''}`;
}

/** Polls an operation until it ends, printing every step (and, for a drain, every store) as it happens. */
export async function follow(a: Admin, id: string, json: boolean, timeoutMs: number): Promise<OperationInfo__Output> {
  const deadline = Date.now() + timeoutMs;
  let steps = 0;
  const childState = new Map<string, string>();
  for (;;) {
    const op = (await a.getOperation(id)).operation!;
    for (const s of op.steps.slice(steps)) {
      if (json) line({ type: 'step', op: op.id, step: s.step, at: s.at, rule: s.rule, reason: s.reason });
      else process.stdout.write(`  ${clock(s.at)}  ${seconds(op.createdAt, s.at).padStart(8)}  ${s.step.padEnd(12)} ${s.reason}\n`);
    }
    steps = op.steps.length;
    for (const c of op.children) {
      const now = `${c.state}/${c.step}`;
      if (childState.get(c.id) === now) continue;
      childState.set(c.id, now);
      if (json) line({ type: 'store', op: c.id, store: c.store, state: c.state, step: c.step, error: c.error });
      else process.stdout.write(`  ${c.store.padEnd(12)} ${c.state.padEnd(10)} ${c.state === 'running' ? c.step : c.state === 'succeeded' ? `moved in ${seconds(c.createdAt, c.updatedAt)}` : c.error}\n`);
    }
    if (op.state !== 'running') {
      if (json) line({ type: 'result', operation: op });
      else process.stdout.write(`${verdict(op)}\n`);
      if (op.state !== 'succeeded') process.exitCode = EXIT_ERROR;
      return op;
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(`operation ${id} is still running (at step ${op.step}) after ${timeoutMs / 1000} s of waiting`, {
        hint: `it goes on without you: follow it with slotctl operations show ${id} --wait`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function operationsTable(ops: readonly OperationInfo__Output[]): string {
  return table(
    ['ID', 'KIND', 'TARGET', 'STATE', 'STEP', 'STARTED', 'TOOK', 'ERROR'],
    ops.map((o) => [o.id, o.kind, o.kind === 'drain' ? o.machine : o.kind === 'rebalance' ? '(cluster)' : o.store, o.state, o.step, o.createdAt.slice(0, 19).replace('T', ' '), o.state === 'running' ? '-' : seconds(o.createdAt, o.updatedAt), o.error.slice(0, 60)]),
  );
}

function operationDetail(op: OperationInfo__Output): string {
  const lines = [
    `operation ${op.id}: ${op.kind} of ${target(op)}${op.parent ? ` (part of ${op.parent})` : ''}`,
    `  state ${op.state}, step ${op.step}${op.cancelRequested ? ', cancel requested' : ''}`,
    `  started ${op.createdAt}, last change ${op.updatedAt}`,
  ];
  if (op.error) lines.push(`  error: ${op.error}`);
  lines.push('  steps:');
  for (const s of op.steps) lines.push(`    ${clock(s.at)}  ${seconds(op.createdAt, s.at).padStart(8)}  ${s.step.padEnd(12)} ${s.reason}`);
  if (op.children.length) {
    lines.push('  switchovers:');
    for (const c of op.children) lines.push(`    ${c.store.padEnd(12)} ${c.id}  ${c.state.padEnd(10)} ${c.state === 'running' ? c.step : c.error || seconds(c.createdAt, c.updatedAt)}`);
  }
  return lines.join('\n');
}

export function registerOperationCommands(program: Command, nouns: { store: Command; machine: Command }, withAdmin: WithAdmin, printJson: (v: unknown) => void): void {
  nouns.store
    .command('switchover')
    .description(
      "Move the store's master role to its replica slot without losing mail: stop the master, replay its leftover " +
        'sync logs to the replica, verify, flip the database (epoch + 1), start both in their new roles, confirm that ' +
        'replication flows the other way. Refused if either machine is not up, replication is stalled or another ' +
        'operation runs on the store; if anything fails before the flip it rolls back and the old master serves again.',
    )
    .argument('<store>', 'store name')
    .option('--wait', 'follow the steps until the switchover ends (exit 1 if it did not succeed)')
    .option('--timeout <duration>', 'before the flip, roll back if not done within this long; with --wait, stop waiting after it (plus a minute for the restart)', '120s')
    .option('--max-backlog <mailboxes>', 'refuse if the sync backlog names more mailboxes than this', '1000')
    .option('--dry-run', 'print the preflight verdict and the steps; change nothing')
    .option('--json', 'print JSON (with --wait: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl store switchover s01 --dry-run\n  slotctl store switchover s01 --wait\n  slotctl operations cancel sw-1a2b3c4d   (before the flip only)')
    .action(async (name: string, opts: { wait?: boolean; timeout: string; maxBacklog: string; dryRun?: boolean; json?: boolean }) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      const maxBacklogMailboxes = Number(opts.maxBacklog);
      await withAdmin(async (a) => {
        const reply = await a.switchover({ store: name, dryRun: !!opts.dryRun, timeoutMs, maxBacklogMailboxes });
        if (reply.dryRun) {
          if (opts.json) printJson({ store: name, wouldRun: reply.problems.length === 0, problems: reply.problems, plan: reply.plan });
          else {
            process.stdout.write(`switchover of ${name} (dry run): ${reply.problems.length ? 'would be REFUSED' : 'preflight passes'}\n`);
            for (const p of reply.problems) process.stdout.write(`  problem: ${p}\n`);
            process.stdout.write(`steps:\n${reply.plan.map((l, i) => `  ${i + 1}. ${l}`).join('\n')}\n`);
          }
          if (reply.problems.length) process.exitCode = EXIT_ERROR;
          return;
        }
        const op = reply.operation!;
        if (!opts.wait || op.state !== 'running') {
          if (opts.json) printJson(op);
          else process.stdout.write(op.state === 'running' ? `switchover of ${name} started: ${op.id} (follow: slotctl operations show ${op.id} --wait)\n` : `${verdict(op)}\n`);
          if (op.state !== 'running' && op.state !== 'succeeded') process.exitCode = EXIT_ERROR;
          return;
        }
        if (!opts.json) process.stdout.write(`switchover of ${name}: ${op.id}\n`);
        await follow(a, op.id, !!opts.json, timeoutMs + 120_000);
      });
    });

  nouns.machine
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

  nouns.machine
    .command('undrain')
    .description('Allow masters on a drained machine again. Moves nothing back by itself: use switchovers (or a rebalance).')
    .argument('<machine>', 'machine name')
    .option('--json', 'print the machine as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const reply = await withAdmin((a) => a.undrainMachine(name));
      if (opts.json) printJson(reply.machine);
      else process.stdout.write(`machine ${name}: undrained; masters may be placed on it again\n`);
    });

  const operations = program
    .command('operations')
    .description('Persisted operations (switchovers, drains): each step is recorded before it takes effect, so a restarted coordinator resumes them.');
  operations
    .command('list')
    .description('Running operations and recent ones (drains with their switchovers folded in).')
    .option('--all', 'also every finished operation, including a drain\'s switchovers')
    .option('--store <store>', 'only operations of this store')
    .option('--machine <machine>', 'only drains of this machine')
    .option('--limit <n>', 'at most this many (the newest)', '50')
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; store?: string; machine?: string; limit: string; json?: boolean }) => {
      const reply = await withAdmin((a) => a.listOperations({ all: !!opts.all, limit: Number(opts.limit), store: opts.store ?? '', machine: opts.machine ?? '' }));
      if (opts.json) printJson(reply.operations);
      else process.stdout.write(reply.operations.length ? `${operationsTable(reply.operations)}\n` : 'no operations\n');
    });
  operations
    .command('show')
    .description('One operation: state, every step with its time and reason, and a drain\'s switchovers.')
    .argument('<id>', 'operation id (sw-… or dr-…)')
    .option('--wait', 'follow it until it ends (exit 1 if it did not succeed)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long', '30m')
    .option('--json', 'print as JSON (with --wait: one object per line)')
    .action(async (id: string, opts: { wait?: boolean; timeout: string; json?: boolean }) => {
      await withAdmin(async (a) => {
        if (opts.wait) {
          await follow(a, id, !!opts.json, parseDuration(opts.timeout, '--timeout'));
          return;
        }
        const op = (await a.getOperation(id)).operation!;
        if (opts.json) printJson(op);
        else process.stdout.write(`${operationDetail(op)}\n`);
      });
    });
  operations
    .command('cancel')
    .description('Stop an operation at its next safe point and roll back. A switchover past the flip completes instead; a drain stops starting switchovers and cancels the running ones.')
    .argument('<id>', 'operation id')
    .option('--json', 'print the operation as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const op = (await withAdmin((a) => a.cancelOperation(id))).operation!;
      if (opts.json) printJson(op);
      else process.stdout.write(`operation ${id}: cancel requested at step ${op.step}; it rolls back at the next safe point (slotctl operations show ${id} --wait)\n`);
    });
}
