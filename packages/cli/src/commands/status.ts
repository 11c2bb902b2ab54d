// slotctl status: one screen, anything wrong first, then machines and stores; exit 3 when the cluster is not healthy.
import type { Command } from 'commander';
import { describeError, parseDuration, type StatusReply__Output } from '@slotctl/shared';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { machinesTable, operationTarget, storesTable } from '../format.js';

function statusScreen(status: StatusReply__Output, target: string): string {
  const lines: string[] = [];
  const up = status.machines.filter((m) => m.state === 'up').length;
  const ok = status.stores.filter((s) => s.health === 'ok').length;
  lines.push(
    `cluster ${status.healthy ? 'HEALTHY' : 'NOT HEALTHY'} — machines ${up}/${status.machines.length} up, stores ${ok}/${status.stores.length} ok  (coordinator ${target}${status.term && Number(status.term) ? `, leader at term ${status.term}` : ''}${status.backend ? `, state in ${status.backend}` : ''})`,
  );
  if (status.problems.length) {
    lines.push('', `problems (${status.problems.length}, worst first):`);
    const shown = status.problems.slice(0, 20);
    for (const p of shown) lines.push(`  ! ${p}`);
    if (status.problems.length > shown.length) lines.push(`  … and ${status.problems.length - shown.length} more (slotctl status --json)`);
  }
  if (status.operations.length) {
    lines.push('', `operations running (${status.operations.length}):`);
    for (const op of status.operations) {
      lines.push(`  ${op.id}  ${op.kind} of ${operationTarget(op)}, at step ${op.step} since ${op.updatedAt.slice(11, 19)}${op.cancelRequested ? ', cancel requested' : ''}`);
      if (op.waiting) lines.push(`      waiting: ${op.waiting}`);
    }
  }
  lines.push('', 'machines', machinesTable(status.machines));
  lines.push('', 'stores', status.stores.length ? storesTable(status.stores) : '  none yet: slotctl cluster apply FILE');
  return lines.join('\n');
}

export function registerStatusCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('status')
    .description('One screen: anything wrong first, then machines and stores. Exits 3 when the cluster is not healthy.')
    .option('--json', 'print the status as JSON')
    .option('--watch [interval]', 'redraw every interval (default 1s) until interrupted')
    .action(async (opts: { json?: boolean; watch?: string | boolean }) => {
      await withAdmin(async (a) => {
        const once = async () => {
          const status = await a.status();
          if (opts.json) printJson(status);
          else process.stdout.write(`${statusScreen(status, a.current)}\n`);
          return status.healthy;
        };
        if (!opts.watch) {
          process.exitCode = (await once()) ? EXIT.ok : EXIT.unhealthy;
          return;
        }
        const every = typeof opts.watch === 'string' ? parseDuration(opts.watch, '--watch') : 1000;
        for (;;) {
          if (!opts.json) process.stdout.write('\x1b[2J\x1b[H');
          try {
            await once();
          } catch (err) {
            process.stdout.write(`slotctl: ${describeError(err)}\n`);
          }
          await new Promise((r) => setTimeout(r, every));
        }
      });
    });
}
