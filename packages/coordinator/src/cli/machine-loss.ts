// slotctl verbs for machine loss: machine failover (an operator's failover, --force past the multi-machine guard),
// store at-risk (what failovers may have left on old masters), store recover / machine recover (bring it back).
import type { Command } from 'commander';
import { parseDuration, type AtRiskInfo__Output, type OperationInfo__Output } from '@slotctl/shared';
import type { Admin } from './client.js';
import { follow } from './operations.js';
import { table } from './format.js';

type WithAdmin = <T>(fn: (a: Admin) => Promise<T>) => Promise<T>;

const EXIT_ERROR = 1;

function ageText(ms: number): string {
  return ms < 1000 ? `${ms} ms` : ms < 120_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`;
}

function atRiskTable(records: readonly AtRiskInfo__Output[]): string {
  return table(
    ['STORE', 'OLD MASTER', 'MACHINE', 'FAILOVER', 'AT', 'FILES', 'MAILBOXES', 'OLDEST CHANGE', 'STATE'],
    records.map((r) => [r.store, r.slot, r.machine, r.op, r.createdAt.slice(0, 19).replace('T', ' '), String(r.files), String(r.mailboxes.length || r.mailboxCount), r.files ? ageText(r.oldestChangeAgeMs) : '-', r.state]),
  );
}

function atRiskDetail(r: AtRiskInfo__Output): string {
  const lines = [
    `store ${r.store}: ${r.state}${r.closedAt ? ` (closed ${r.closedAt})` : ''}`,
    `  failover ${r.op} at ${r.createdAt}: ${r.slot} on ${r.machine} was master; the store is at epoch ${r.epoch} since`,
    `  its last report (${r.reportedAt || 'none'}): ${r.files} sync log file(s), ${r.bytes} bytes, ${r.mailboxCount} mailbox(es), oldest change ${ageText(r.oldestChangeAgeMs)} old`,
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

async function followAll(a: Admin, ops: readonly OperationInfo__Output[], json: boolean, timeoutMs: number): Promise<void> {
  let failed = false;
  for (const op of ops) {
    if (!json) process.stdout.write(`${op.kind} of ${op.store}: ${op.id}\n`);
    const end = await follow(a, op.id, json, timeoutMs);
    failed ||= end.state !== 'succeeded';
  }
  if (failed) process.exitCode = EXIT_ERROR;
}

function printPreview(what: string, reply: { plan: string[]; problems: string[] }, json: boolean, extra: Record<string, unknown>): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...extra, wouldRun: reply.problems.length === 0, problems: reply.problems, plan: reply.plan })}\n`);
  else {
    process.stdout.write(`${what}: ${reply.problems.length ? 'would be REFUSED' : 'would run'}\n`);
    for (const p of reply.problems) process.stdout.write(`  problem: ${p}\n`);
    if (reply.plan.length) process.stdout.write(`steps:\n${reply.plan.map((l) => `  ${l}`).join('\n')}\n`);
  }
  if (reply.problems.length) process.exitCode = EXIT_ERROR;
}

export function registerMachineLossCommands(nouns: { store: Command; machine: Command }, withAdmin: WithAdmin, printJson: (v: unknown) => void): void {
  nouns.machine
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

  nouns.store
    .command('at-risk')
    .description(
      'What failovers may have left behind: per store, the old master, its last reported sync backlog (files, the ' +
        'mailboxes named, age of the oldest change) and, once the machine returned, the mailboxes its quarantined ' +
        'sync logs name. Closed records (recovered, or nothing lost) with --all.',
    )
    .argument('[store]', 'one store (with its mailboxes and the recovery result)')
    .option('--all', 'closed records too')
    .option('--json', 'print as JSON')
    .action(async (name: string | undefined, opts: { all?: boolean; json?: boolean }) => {
      const reply = await withAdmin((a) => a.listAtRisk({ store: name ?? '', all: !!opts.all || !!name }));
      if (opts.json) return printJson(reply.records);
      if (reply.records.length === 0) process.stdout.write(name ? `store ${name}: nothing at risk\n` : 'nothing at risk\n');
      else if (name) process.stdout.write(`${reply.records.map(atRiskDetail).join('\n')}\n`);
      else process.stdout.write(`${atRiskTable(reply.records)}\n`);
    });

  const recoverHelp =
    'The returned old master (stopped since the failover, its leftover sync logs in quarantine) pushes each mailbox ' +
    'those logs name to the new master (sync_client -m: creates what is missing, merges the rest; nothing on the new ' +
    'master is deleted or replaced), then every message of those mailboxes is looked for on the new master by GUID. ' +
    'When all are found the at-risk record closes and the old master starts as replica; otherwise it stays stopped and ' +
    'the record lists each mailbox with what went wrong.';
  const recoverAction = (which: 'store' | 'machine') => async (name: string, opts: { dryRun?: boolean; wait: boolean; timeout: string; json?: boolean }) => {
    await withAdmin(async (a) => {
      const reply = await a.recover({ store: which === 'store' ? name : '', machine: which === 'machine' ? name : '', dryRun: !!opts.dryRun });
      if (reply.dryRun || reply.operations.length === 0) return printPreview(`recovery of ${which} ${name}${reply.dryRun ? ' (dry run)' : ''}`, reply, !!opts.json, { [which]: name });
      for (const p of reply.problems) process.stderr.write(`slotctl: ${p}\n`);
      if (!opts.wait) {
        if (opts.json) printJson(reply.operations);
        else for (const op of reply.operations) process.stdout.write(`recovery of ${op.store} started: ${op.id}\n`);
        return;
      }
      await followAll(a, reply.operations, !!opts.json, parseDuration(opts.timeout, '--timeout'));
    });
  };
  nouns.store
    .command('recover')
    .description(`Recover what a failover put at risk for one store. ${recoverHelp}`)
    .argument('<store>', 'store name')
    .option('--dry-run', 'print the steps and why it would be refused; change nothing')
    .option('--no-wait', 'start it and return at once')
    .option('--timeout <duration>', 'stop waiting after this long', '15m')
    .option('--json', 'print JSON (while following: one object per line)')
    .addHelpText('after', '\nExamples:\n  slotctl store at-risk s07\n  slotctl store recover s07 --dry-run\n  slotctl store recover s07')
    .action(recoverAction('store'));
  nouns.machine
    .command('recover')
    .description(`Recover every store with an open at-risk record on this (returned) machine (all at once). ${recoverHelp}`)
    .argument('<machine>', 'the returned machine')
    .option('--dry-run', 'print the steps and why each would be refused; change nothing')
    .option('--no-wait', 'start them and return at once')
    .option('--timeout <duration>', 'per store: stop waiting after this long', '15m')
    .option('--json', 'print JSON (while following: one object per line)')
    .action(recoverAction('machine'));
}
