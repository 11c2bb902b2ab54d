// slotctl status: one screen, anything wrong first, then machines and stores; exit 3 when the cluster is not healthy.
import type { Command } from 'commander';
import { describeError, parseDuration, type StatusReply__Output } from '@slotctl/shared';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { machinesTable, operationTarget, storesTable } from '../format.js';
import { WIDE_HELP, WIDTH_HELP, displayWidth, outputWidth, wrap } from '../table-fit.js';

/** The screen at most `width` columns wide (Infinity: every column, nothing folded). */
export function statusScreen(status: StatusReply__Output, target: string, width = Infinity): string {
  const lines: string[] = [];
  // free text folds at spaces, its continuation lines indented under the text they continue
  const add = (line: string, indent: number) => lines.push(...wrap(line, width, indent));
  const up = status.machines.filter((m) => m.state === 'up').length;
  const ok = status.stores.filter((s) => s.health === 'ok').length;
  const verdict = `cluster ${status.healthy ? 'HEALTHY' : 'NOT HEALTHY'} — machines ${up}/${status.machines.length} up, stores ${ok}/${status.stores.length} ok`;
  const coordinator = `(coordinator ${target}${status.term && Number(status.term) ? `, leader at term ${status.term}` : ''}${status.backend ? `, state in ${status.backend}` : ''})`;
  // too narrow for one line: the verdict alone on the first, where scripts and eyes look for it
  if (displayWidth(`${verdict}  ${coordinator}`) <= width) lines.push(`${verdict}  ${coordinator}`);
  else lines.push(verdict, ...wrap(`  ${coordinator}`, width, 3));
  if (status.problems.length) {
    lines.push('', `problems (${status.problems.length}, worst first):`);
    const shown = status.problems.slice(0, 20);
    for (const p of shown) add(`  ! ${p}`, 4);
    if (status.problems.length > shown.length) add(`  … and ${status.problems.length - shown.length} more (slotctl status --json)`, 4);
  }
  if (status.operations.length) {
    lines.push('', `operations running (${status.operations.length}):`);
    for (const op of status.operations) {
      add(`  ${op.id}  ${op.kind} of ${operationTarget(op)}, at step ${op.step} since ${op.updatedAt.slice(11, 19)}${op.cancelRequested ? ', cancel requested' : ''}`, 6);
      if (op.waiting) add(`      waiting: ${op.waiting}`, 8);
    }
  }
  lines.push('', 'machines', machinesTable(status.machines, width));
  lines.push('', 'stores', status.stores.length ? storesTable(status.stores, width) : '  none yet: slotctl cluster apply FILE');
  return lines.join('\n');
}

export function registerStatusCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('status')
    .description('One screen: anything wrong first, then machines and stores. Exits 3 when the cluster is not healthy.')
    .option('--json', 'print the status as JSON')
    .option('--watch [interval]', 'redraw every interval (default 1s) until interrupted')
    .option('--wide', WIDE_HELP)
    .addHelpText('after', `\n${WIDTH_HELP}`)
    .action(async (opts: { json?: boolean; watch?: string | boolean; wide?: boolean }) => {
      await withAdmin(async (a) => {
        const once = async () => {
          const status = await a.status();
          if (opts.json) printJson(status);
          // the width is read at every redraw: the terminal may have been resized
          else process.stdout.write(`${statusScreen(status, a.current, outputWidth(opts))}\n`);
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
