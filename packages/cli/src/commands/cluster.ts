// slotctl cluster …: the cluster description (machines and stores) declared from a file.
import type { Command } from 'commander';
import type { ApplyClusterReply__Output } from '@slotctl/shared';
import { EXIT, printJson, readFileArgument, type WithAdmin } from '../context.js';
import { writeFileAtomic } from '@slotctl/shared';

function applyReport(reply: ApplyClusterReply__Output, file: string, dryRun: boolean): string {
  const lines: string[] = [];
  if (!reply.ok) {
    lines.push(`${file}: ${reply.problems.length} problem(s); nothing was changed:`);
    for (const p of reply.problems) {
      const where = [p.line ? `line ${p.line}` : '', p.path, p.entry ? `(${p.entry})` : ''].filter(Boolean).join(' ');
      lines.push(`  ${p.code}: ${where ? `${where}: ` : ''}${p.message}`);
    }
    return lines.join('\n');
  }
  const effective = reply.changes.filter((c) => c.action !== 'keep');
  for (const c of reply.changes) lines.push(`  ${c.action.padEnd(11)} ${c.kind.padEnd(7)} ${c.name}: ${c.detail}`);
  if (effective.length === 0) lines.push(`${file}: no changes; the database already matches.`);
  else if (dryRun) lines.push(`${file}: dry run, ${effective.length} change(s) would be made; nothing was changed.`);
  else lines.push(`${file}: applied ${effective.length} change(s).`);
  return lines.join('\n');
}

export function registerClusterCommands(program: Command, withAdmin: WithAdmin): void {
  const cluster = program.command('cluster').description('The cluster description: machines and stores.');

  cluster
    .command('apply')
    .description('Declare machines and stores from a YAML or JSON file ("-" reads stdin). All or nothing: any problem writes nothing.')
    .argument('<file>', 'cluster description (see deploy/cluster.example.yaml)')
    .option('--dry-run', 'show what would change; change nothing')
    .option('--prune', 'remove machines and stores that the file no longer names (mail on disk is never touched)')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { dryRun?: boolean; prune?: boolean; json?: boolean }) => {
      const text = readFileArgument(file);
      const reply = await withAdmin((a) =>
        a.applyCluster({ text, fileName: file === '-' ? 'stdin' : file, dryRun: !!opts.dryRun, prune: !!opts.prune }),
      );
      if (opts.json) printJson(reply);
      else process.stdout.write(`${applyReport(reply, file, !!opts.dryRun)}\n`);
      if (!reply.ok) process.exitCode = EXIT.error;
    });

  cluster
    .command('export')
    .description('Print the cluster file as the database holds it now: current masters, slots made by re-replication, no retired machines. Applying it changes nothing.')
    .option('--out <file>', 'write it to FILE (created 0644; an existing file is replaced) instead of stdout')
    .option('--json', 'print {"text": …} as JSON')
    .action(async (opts: { out?: string; json?: boolean }) => {
      const reply = await withAdmin((a) => a.exportCluster({}));
      if (opts.json) return printJson(reply);
      if (opts.out) {
        await writeFileAtomic(opts.out, reply.text);
        process.stderr.write(`cluster file written to ${opts.out}\n`);
      } else process.stdout.write(reply.text);
    });
}
