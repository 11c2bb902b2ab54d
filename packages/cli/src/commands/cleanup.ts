// slotctl cleanup …: per-slot cleanup (cyr_expire on masters and replicas alike): status, run.
import type { Command } from 'commander';
import { formatSize, parseDuration, ValidationError, type CleanupStatusRow } from '@slotctl/shared';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { ago, agoShort, shortTime } from '../format.js';
import { WIDE_HELP, fitTable, outputWidth, type TableSpec } from '../table-fit.js';

function lastCell(r: CleanupStatusRow): string {
  if (!r.last) return 'never';
  return `${r.last.ok ? 'ok' : `FAILED (exit ${r.last.exitCode})`} ${ago(r.last.finishedAt)}`;
}

/** The last run in fewer words: no requester, no parentheses ("FAILED exit 75 8h55m ago"). */
function lastRunBrief(r: CleanupStatusRow): string {
  if (r.running) return `RUNNING ${agoShort(r.running.since)}`;
  if (!r.last) return 'never';
  return `${r.last.ok ? 'ok' : `FAILED exit ${r.last.exitCode}`} ${ago(r.last.finishedAt)}`;
}

function nextCell(r: CleanupStatusRow, time: (iso: string) => string): string {
  return r.running ? '-' : r.requested ? `asked (${r.requested})` : r.nextAt ? time(r.nextAt) : '-';
}

// The disks go first, then words (who asked, "exit", the year), how long the last run took, and the machine (in the
// slot's name unless it was named otherwise); the last run's words are cut, never the space figures.
const CLEANUP: TableSpec<CleanupStatusRow> = {
  columns: [
    { head: 'slot', cell: (r) => r.slot },
    { head: 'machine', cell: (r) => r.machine },
    { head: 'role', cell: (r) => r.role },
    { head: 'disks', cell: (r) => r.disks.join(' ') },
    { head: 'last run', cell: (r) => (r.running ? `RUNNING since ${ago(r.running.since)} (${r.running.requestedBy})` : lastCell(r)), short: { cell: lastRunBrief } },
    { head: 'took', cell: (r) => (r.last ? `${(r.last.ms / 1000).toFixed(1)} s` : '-') },
    { head: 'freed', cell: (r) => (r.last ? formatSize(r.last.freedBytes) : '-') },
    { head: 'waiting', cell: (r) => formatSize(r.waitingBytes) },
    { head: 'next', cell: (r) => nextCell(r, (iso) => iso.slice(0, 16).replace('T', ' ')), short: { cell: (r) => (r.requested && !r.running ? 'asked' : nextCell(r, shortTime)) } },
  ],
  fit: [{ drop: 'disks' }, [{ shorten: 'next' }, { shorten: 'last run' }], { drop: 'took' }, { drop: 'machine' }, { truncate: 'last run', min: 12 }, { drop: 'freed' }, { truncate: 'last run', min: 8 }],
};

export function cleanupTable(rows: readonly CleanupStatusRow[], width = Infinity): string {
  return fitTable(CLEANUP, rows, width);
}

export function registerCleanupCommands(program: Command, withAdmin: WithAdmin): void {
  const cleanup = program
    .command('cleanup')
    .description(
      'Per-slot cleanup: cyr_expire on masters and replicas alike (a master\'s cleanup does not reach its replica), ' +
        'with the retentions of the cluster file\'s `cleanup:` section, nightly in its window, one disk at a time.',
    );

  cleanup
    .command('status')
    .description('Per slot: the last run (when, how long, exit code, space freed), the space waiting for cleanup, the next run.')
    .option('--machine <machine>', 'one machine only')
    .option('--json', 'print as JSON')
    .option('--wide', WIDE_HELP)
    .action(async (opts: { machine?: string; json?: boolean; wide?: boolean }) => {
      const rows = JSON.parse((await withAdmin((a) => a.cleanupStatus({ machine: opts.machine ?? '' }))).json) as CleanupStatusRow[];
      if (opts.json) printJson(rows);
      else process.stdout.write(`${cleanupTable(rows, outputWidth(opts))}\n`);
    });

  cleanup
    .command('run')
    .description(
      'Clean a slot, or every slot of a machine, now: each starts as soon as its disk and machine allow (slots sharing ' +
        'a disk never run together; at most the policy\'s `parallel` per machine) and no operation touches its store.',
    )
    .option('--slot <slot>', 'one slot')
    .option('--machine <machine>', 'every slot of a machine')
    .option('--wait', 'wait until they have run, then print their results (exit 1 if one failed)')
    .option('--timeout <duration>', 'with --wait: stop waiting after this long', '30m')
    .option('--json', 'print JSON')
    .option('--wide', WIDE_HELP)
    .addHelpText('after', '\nExamples:\n  slotctl cleanup run --slot s01-m1 --wait\n  slotctl cleanup run --machine m3')
    .action(async (opts: { slot?: string; machine?: string; wait?: boolean; timeout: string; json?: boolean; wide?: boolean }) => {
      if (!opts.slot === !opts.machine) throw new ValidationError('name a slot (--slot) or a machine (--machine)', { hint: 'e.g. slotctl cleanup run --slot s01-m1' });
      const timeoutMs = parseDuration(opts.timeout, '--timeout');
      await withAdmin(async (a) => {
        const asked = new Date().toISOString();
        const reply = await a.runCleanup({ slot: opts.slot ?? '', machine: opts.machine ?? '' });
        for (const p of reply.problems) process.stderr.write(`slotctl: ${p}\n`);
        if (!opts.wait) {
          if (opts.json) printJson(reply);
          else process.stdout.write(`cleanup asked for ${reply.slots.join(', ') || 'nothing'}\n`);
          return;
        }
        const deadline = Date.now() + timeoutMs;
        let rows: CleanupStatusRow[] = [];
        for (;;) {
          rows = (JSON.parse((await a.cleanupStatus({ machine: '' })).json) as CleanupStatusRow[]).filter((r) => reply.slots.includes(r.slot));
          if (rows.every((r) => !r.running && !r.requested && r.last && r.last.finishedAt >= asked)) break;
          if (Date.now() > deadline) throw new ValidationError(`cleanups still waiting or running after ${opts.timeout}`, { hint: 'follow them with slotctl cleanup status' });
          await new Promise((r) => setTimeout(r, 500));
        }
        if (opts.json) printJson(rows);
        else process.stdout.write(`${cleanupTable(rows, outputWidth(opts))}\n`);
        if (rows.some((r) => !r.last?.ok)) {
          process.exitCode = EXIT.error;
          if (!opts.json) for (const r of rows.filter((x) => !x.last?.ok)) process.stdout.write(`${r.slot}: ${r.last?.error}\n${(r.last?.tail ?? []).map((l) => `  ${l}`).join('\n')}\n`);
        }
      });
    });
}
