// slotctl operations …: the persisted operations (switchovers, drains, failovers, recoveries, rebalances,
// re-replications): list, show (or follow) one, cancel one.
import type { Command } from 'commander';
import { parseDuration, type OperationInfo__Output } from '@slotctl/shared';
import { printJson, type WithAdmin } from '../context.js';
import { follow } from '../follow.js';
import { clock, operationTarget, seconds, shortTime } from '../format.js';
import { WIDE_HELP, fitTable, outputWidth, type TableSpec } from '../table-fit.js';

// The start shortens and how long it took goes before the error text is cut (a running one's without "waiting:",
// its state says so); then the start and the step go.
const OPERATIONS: TableSpec<OperationInfo__Output> = {
  columns: [
    { head: 'ID', cell: (o) => o.id },
    { head: 'KIND', cell: (o) => o.kind },
    { head: 'TARGET', cell: (o) => (o.kind === 'drain' ? o.machine : o.kind === 'rebalance' ? '(cluster)' : o.store) },
    { head: 'STATE', cell: (o) => o.state },
    { head: 'STEP', cell: (o) => o.step },
    { head: 'STARTED', cell: (o) => o.createdAt.slice(0, 19).replace('T', ' '), short: { cell: (o) => shortTime(o.createdAt) } },
    { head: 'TOOK', cell: (o) => (o.state === 'running' ? '-' : seconds(o.createdAt, o.updatedAt)) },
    // a running operation says what it waits for; an ended one what went wrong
    {
      head: 'ERROR / WAITING',
      cell: (o) => (o.state === 'running' && o.waiting ? `waiting: ${o.waiting}` : o.error).slice(0, 60),
      short: { cell: (o) => (o.state === 'running' && o.waiting ? o.waiting : o.error) },
    },
  ],
  fit: [{ shorten: 'STARTED' }, { drop: 'TOOK' }, { shorten: 'ERROR / WAITING' }, { truncate: 'ERROR / WAITING', min: 24 }, { drop: 'STARTED' }, { drop: 'STEP' }, { truncate: 'ERROR / WAITING', min: 15 }],
};

export function operationsTable(ops: readonly OperationInfo__Output[], width = Infinity): string {
  return fitTable(OPERATIONS, ops, width);
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
    .option('--wide', WIDE_HELP)
    .action(async (opts: { all?: boolean; store?: string; machine?: string; limit: string; json?: boolean; wide?: boolean }) => {
      const reply = await withAdmin((a) => a.listOperations({ all: !!opts.all, limit: Number(opts.limit), store: opts.store ?? '', machine: opts.machine ?? '' }));
      if (opts.json) printJson(reply.operations);
      else process.stdout.write(reply.operations.length ? `${operationsTable(reply.operations, outputWidth(opts))}\n` : 'no operations\n');
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
