// slotctl store …: every verb about stores, in the order `slotctl store --help` lists them: list, switchover (a
// planned move of the master), move-replica (the replica to another machine), at-risk and recover (what a disaster
// failover may have left behind).
import type { Command } from 'commander';
import { parseDuration, type AtRiskInfo__Output, type OperationInfo__Output } from '@slotctl/shared';
import type { Admin } from '../admin-client.js';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { follow, verdict } from '../follow.js';
import { shortTime, storesTable } from '../format.js';
import { WIDE_HELP, fitTable, outputWidth, type TableSpec } from '../table-fit.js';
import { RECOVER_HELP, recoverAction } from '../recovery.js';

function ageText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`;
}

// Headers and the time shorten first; the failover's id and the machine (in the old master's name unless it was
// named otherwise) go before the time; what is at risk stays.
const AT_RISK: TableSpec<AtRiskInfo__Output> = {
  columns: [
    { head: 'STORE', cell: (r) => r.store },
    { head: 'OLD MASTER', cell: (r) => r.slot },
    { head: 'MACHINE', cell: (r) => r.machine },
    { head: 'FAILOVER', cell: (r) => r.op },
    { head: 'AT', cell: (r) => r.createdAt.slice(0, 19).replace('T', ' '), short: { cell: (r) => shortTime(r.createdAt) } },
    { head: 'FILES', cell: (r) => String(r.files) },
    { head: 'MAILBOXES', cell: (r) => String(r.mailboxes.length || r.mailboxCount), short: { head: 'MBOX' } },
    { head: 'OLDEST CHANGE', cell: (r) => (r.files ? ageText(r.oldestChangeAgeMs) : '-'), short: { head: 'OLDEST' } },
    { head: 'STATE', cell: (r) => r.state },
  ],
  fit: [[{ shorten: 'MAILBOXES' }, { shorten: 'OLDEST CHANGE' }], { shorten: 'AT' }, { drop: 'FAILOVER' }, { drop: 'MACHINE' }, { drop: 'AT' }],
};

export function atRiskTable(records: readonly AtRiskInfo__Output[], width = Infinity): string {
  return fitTable(AT_RISK, records, width);
}

function atRiskDetail(r: AtRiskInfo__Output): string {
  const lines = [
    `store ${r.store}: ${r.state}${r.closedAt ? ` (closed ${r.closedAt})` : ''}`,
    `  failover ${r.op} at ${r.createdAt}: ${r.slot} on ${r.machine} was master; the store is at epoch ${r.epoch} since`,
    `  its last report (${r.reportedAt || 'none'}): ${r.files} sync log file(s), ${r.bytes} bytes, ${r.mailboxCount} mailbox(es), oldest change ${ageText(r.oldestChangeAgeMs)} old`,
    ...(r.unloggedSince ? [`  and changes since ${r.unloggedSince} its sync log could not record (meta partition full or failing): every mailbox of the slot is at risk`] : []),
  ];
  if (r.mailboxes.length) lines.push(`  mailboxes that may miss changes on the new master:`, ...r.mailboxes.map((m) => `    ${m}`));
  const result = JSON.parse(r.resultJson || '{}') as { op?: string; error?: string; mailboxes?: { name: string; result: string; missing: number; detail: string }[] };
  if (result.op) {
    lines.push(`  recovery ${result.op}:${result.error ? ` ${result.error}` : ''}`);
    for (const m of result.mailboxes ?? []) lines.push(`    ${m.name.padEnd(30)} ${m.result.padEnd(8)} ${m.missing ? `${m.missing} message(s) not on the new master` : 'verified'}${m.detail ? `  ${m.detail}` : ''}`);
  }
  if (r.state === 'open') lines.push(`  next: slotctl store recover ${r.store} (once ${r.machine} is back)`);
  return lines.join('\n');
}

/**
 * The answer to a verb that starts an operation (or says, on a dry run, what it would do and what stops it): the dry
 * run's verdict and steps, the operation started (or its end), or the operation followed until it ends.
 */
async function startedOperation(
  a: Admin,
  reply: { dryRun: boolean; problems: string[]; plan: string[]; operation?: OperationInfo__Output | null },
  o: { what: string; ok: string; dryRunJson: Record<string, string>; wait: boolean; json: boolean; followMs: number },
): Promise<void> {
  if (reply.dryRun) {
    if (o.json) printJson({ ...o.dryRunJson, wouldRun: reply.problems.length === 0, problems: reply.problems, plan: reply.plan });
    else {
      process.stdout.write(`${o.what} (dry run): ${reply.problems.length ? 'would be REFUSED' : o.ok}\n`);
      for (const p of reply.problems) process.stdout.write(`  problem: ${p}\n`);
      process.stdout.write(`steps:\n${reply.plan.map((l, i) => `  ${i + 1}. ${l}`).join('\n')}\n`);
    }
    if (reply.problems.length) process.exitCode = EXIT.error;
    return;
  }
  const op = reply.operation!;
  if (!o.wait || op.state !== 'running') {
    if (o.json) printJson(op);
    else process.stdout.write(op.state === 'running' ? `${o.what} started: ${op.id} (follow: slotctl operations show ${op.id} --wait)\n` : `${verdict(op)}\n`);
    if (op.state !== 'running' && op.state !== 'succeeded') process.exitCode = EXIT.error;
    return;
  }
  if (!o.json) process.stdout.write(`${o.what}: ${op.id}\n`);
  await follow(a, op.id, o.json, o.followMs);
}

export function registerStoreCommands(program: Command, withAdmin: WithAdmin): void {
  const store = program.command('store').description('Stores (a master slot and a replica slot on two machines).');

  store
    .command('list')
    .description('Stores with their master, replica, epoch, health and backlog.')
    .option('--json', 'print as JSON')
    .option('--wide', WIDE_HELP)
    .action(async (opts: { json?: boolean; wide?: boolean }) => {
      const reply = await withAdmin((a) => a.listStores());
      if (opts.json) printJson(reply.stores);
      else process.stdout.write(`${storesTable(reply.stores, outputWidth(opts))}\n`);
    });

  store
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
        await startedOperation(a, reply, { what: `switchover of ${name}`, ok: 'preflight passes', dryRunJson: { store: name }, wait: !!opts.wait, json: !!opts.json, followMs: timeoutMs + 120_000 });
      });
    });

  store
    .command('move-replica')
    .description(
      "Move the store's replica to another machine without ever running on one copy: a new replica slot is added on " +
        'MACHINE (its own --ip), the master replicates to both and copies every user to it while the old replica keeps ' +
        'replicating, every mailbox is compared, then the new slot becomes the replica (epoch + 1) and the old one stops ' +
        'and lets its address go (its files stay on its machine). Refused when MACHINE is drained, full, in the ' +
        "master's rack or lacks a disk of the right class. Cancellable before the switch (the new slot is abandoned).",
    )
    .argument('<store>', 'store name')
    .requiredOption('--to <machine>', 'the machine that will hold the replica')
    .option('--ip <address>', "the new replica slot's address (routed to MACHINE, like its other slots' addresses); default: the first free one of MACHINE's slot_ips in the cluster file")
    .option('--data-path <path>', "the new slot's data partition (default: the old replica's place under MACHINE's disk of the same name)")
    .option('--meta-path <path>', "the new slot's meta partition (default: as for --data-path)")
    .option('--no-wait', 'start it and return at once')
    .option('--timeout <duration>', 'stop waiting after this long (the move goes on)', '70m')
    .option('--dry-run', 'print the steps and what stops the move now; change nothing')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl store move-replica s01 --to m5 --dry-run\n  slotctl store move-replica s01 --to m5 --ip 10.0.5.21\n  slotctl operations cancel mv-1a2b3c4d   (before the switch only)')
    .action(async (name: string, opts: { to: string; ip?: string; dataPath?: string; metaPath?: string; wait: boolean; timeout: string; dryRun?: boolean; json?: boolean }) => {
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      await withAdmin(async (a) => {
        const reply = await a.moveReplica({ store: name, toMachine: opts.to, ip: opts.ip ?? '', dataPath: opts.dataPath ?? '', metaPath: opts.metaPath ?? '', dryRun: !!opts.dryRun });
        await startedOperation(a, reply, { what: `replica move of ${name} to ${opts.to}`, ok: 'it may start', dryRunJson: { store: name, to: opts.to }, wait: opts.wait, json: !!opts.json, followMs: timeoutMs });
      });
    });

  store
    .command('at-risk')
    .description(
      'What failovers may have left behind: per store, the old master, its last reported sync backlog (files, the ' +
        'mailboxes named, age of the oldest change) and, once the machine returned, the mailboxes its quarantined ' +
        'sync logs name. Closed records (recovered, or nothing lost) with --all.',
    )
    .argument('[store]', 'one store (with its mailboxes and the recovery result)')
    .option('--all', 'closed records too')
    .option('--json', 'print as JSON')
    .option('--wide', WIDE_HELP)
    .action(async (name: string | undefined, opts: { all?: boolean; json?: boolean; wide?: boolean }) => {
      const reply = await withAdmin((a) => a.listAtRisk({ store: name ?? '', all: !!opts.all || !!name }));
      if (opts.json) return printJson(reply.records);
      if (reply.records.length === 0) process.stdout.write(name ? `store ${name}: nothing at risk\n` : 'nothing at risk\n');
      else if (name) process.stdout.write(`${reply.records.map(atRiskDetail).join('\n')}\n`);
      else process.stdout.write(`${atRiskTable(reply.records, outputWidth(opts))}\n`);
    });

  store
    .command('recover')
    .description(`Recover what a failover put at risk for one store. ${RECOVER_HELP}`)
    .argument('<store>', 'store name')
    .option('--dry-run', 'print the steps and why it would be refused; change nothing')
    .option('--no-wait', 'start it and return at once')
    .option('--timeout <duration>', 'stop waiting after this long', '15m')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl store at-risk s07\n  slotctl store recover s07 --dry-run\n  slotctl store recover s07')
    .action(recoverAction('store', withAdmin));
}
