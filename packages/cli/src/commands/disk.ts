// slotctl disk …: the disk health of the slots' partitions, as the agents last measured it.
import type { Command } from 'commander';
import { formatSize, type DiskStatusRow } from '@slotctl/shared';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { WIDE_HELP, fitTable, outputWidth, type TableSpec } from '../table-fit.js';

// The path is configuration; headers shorten; the machine is in the slot's name unless it was named otherwise; an
// error in the level column is cut, never the level itself.
const DISKS: TableSpec<DiskStatusRow> = {
  columns: [
    { head: 'machine', cell: (r) => r.machine },
    { head: 'slot', cell: (r) => r.slot },
    { head: 'partition', cell: (r) => r.role, short: { head: 'part' } },
    { head: 'path', cell: (r) => r.path },
    { head: 'used', cell: (r) => `${r.usedPercent} %` },
    { head: 'inodes', cell: (r) => `${r.inodesUsedPercent} %` },
    { head: 'free', cell: (r) => formatSize(r.freeBytes) },
    { head: 'deleted folders', cell: (r) => formatSize(r.deletedBytes), short: { head: 'deleted' } },
    { head: 'expunged', cell: (r) => formatSize(r.expungedBytes) },
    { head: 'level', cell: (r) => (r.error ? `unknown: ${r.error}` : r.level) },
  ],
  fit: [{ drop: 'path' }, [{ shorten: 'partition' }, { shorten: 'deleted folders' }], { truncate: 'level', min: 12 }, { drop: 'machine' }, { truncate: 'level', min: 8 }],
};

export function diskTable(rows: readonly DiskStatusRow[], width = Infinity): string {
  return fitTable(DISKS, rows, width);
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
    .option('--wide', WIDE_HELP)
    .action(async (opts: { machine?: string; json?: boolean; wide?: boolean }) => {
      const rows = JSON.parse((await withAdmin((a) => a.diskStatus({ machine: opts.machine ?? '' }))).json) as DiskStatusRow[];
      if (opts.json) printJson(rows);
      else process.stdout.write(rows.length ? `${diskTable(rows, outputWidth(opts))}\n` : 'no partition measured yet (agents measure every few minutes)\n');
      if (rows.some((r) => r.level === 'critical')) process.exitCode = EXIT.error;
    });
}
