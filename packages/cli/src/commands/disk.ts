// slotctl disk …: the disk health of the slots' partitions, as the agents last measured it.
import type { Command } from 'commander';
import { formatSize, type DiskStatusRow } from '@slotctl/shared';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { table } from '../format.js';

function diskTable(rows: readonly DiskStatusRow[]): string {
  return table(
    ['machine', 'slot', 'partition', 'path', 'used', 'inodes', 'free', 'deleted folders', 'expunged', 'level'],
    rows.map((r) => [r.machine, r.slot, r.role, r.path, `${r.usedPercent} %`, `${r.inodesUsedPercent} %`, formatSize(r.freeBytes), formatSize(r.deletedBytes), formatSize(r.expungedBytes), r.error ? `unknown: ${r.error}` : r.level]),
  );
}

export function registerDiskCommands(program: Command, withAdmin: WithAdmin): void {
  const disk = program.command('disk').description('Disk health of the slots\' partitions.');

  disk
    .command('status')
    .description(
      'Per partition: bytes and inodes used, free, and what cleanup would free (delayed-deleted folders, expunged ' +
        'messages), with the level against the policy\'s thresholds (warn 80 %, critical 90 % by default).',
    )
    .option('--machine <machine>', 'one machine only')
    .option('--json', 'print as JSON')
    .action(async (opts: { machine?: string; json?: boolean }) => {
      const rows = JSON.parse((await withAdmin((a) => a.diskStatus({ machine: opts.machine ?? '' }))).json) as DiskStatusRow[];
      if (opts.json) printJson(rows);
      else process.stdout.write(rows.length ? `${diskTable(rows)}\n` : 'no partition measured yet (agents measure every few minutes)\n');
      if (rows.some((r) => r.level === 'critical')) process.exitCode = EXIT.error;
    });
}
