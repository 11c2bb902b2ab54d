// slotctl operations …: the persisted operations (switchovers, drains, failovers, recoveries, rebalances,
// re-replications): list, show (or follow) one, cancel one.
import type { Command } from 'commander';
import { parseDuration, type OperationInfo__Output } from '@slotctl/shared';
import { printJson, type WithAdmin } from '../context.js';
import { follow } from '../follow.js';
import { clock, operationTarget, seconds, table } from '../format.js';

function operationsTable(ops: readonly OperationInfo__Output[]): string {
  return table(
    ['ID', 'KIND', 'TARGET', 'STATE', 'STEP', 'STARTED', 'TOOK', 'ERROR / WAITING'],
    // a running operation says what it waits for; an ended one what went wrong
    ops.map((o) => [o.id, o.kind, o.kind === 'drain' ? o.machine : o.kind === 'rebalance' ? '(cluster)' : o.store, o.state, o.step, o.createdAt.slice(0, 19).replace('T', ' '), o.state === 'running' ? '-' : seconds(o.createdAt, o.updatedAt), (o.state === 'running' && o.waiting ? `waiting: ${o.waiting}` : o.error).slice(0, 60)]),
  );
}

function operationDetail(op: OperationInfo__Output): string {
  const lines = [
    `operation ${op.id}: ${op.kind} of ${operationTarget(op)}${op.parent ? ` (part of ${op.parent})` : ''}`,
    `  state ${op.state}, step ${op.step}${op.cancelRequested ? ', cancel requested' : ''}`,
    `  started ${op.createdAt}, last change ${op.updatedAt}`,
  ];
  if (op.state === 'running' && op.waiting) lines.push(`  waiting: ${op.waiting}`);
  if (op.error) lines.push(`  error: ${op.error}`);
  lines.push('  steps:');
  for (const s of op.steps) lines.push(`    ${clock(s.at)}  ${seconds(op.createdAt, s.at).padStart(8)}  ${s.step.padEnd(12)} ${s.reason}`);
  if (op.children.length) {
    lines.push('  switchovers:');
    for (const c of op.children) lines.push(`    ${c.store.padEnd(12)} ${c.id}  ${c.state.padEnd(10)} ${c.state === 'running' ? c.step : c.error || seconds(c.createdAt, c.updatedAt)}`);
  }
  return lines.join('\n');
}

export function registerOperationsCommands(program: Command, withAdmin: WithAdmin): void {
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
