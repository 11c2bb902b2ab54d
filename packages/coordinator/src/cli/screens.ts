// Whole screens: `slotctl status` and the result of `cluster apply`.
import type { ApplyClusterReply__Output, StatusReply__Output } from '@slotctl/shared';
import { machinesTable, storesTable } from './format.js';

export function statusScreen(status: StatusReply__Output, target: string): string {
  const lines: string[] = [];
  const up = status.machines.filter((m) => m.state === 'up').length;
  const ok = status.stores.filter((s) => s.health === 'ok').length;
  lines.push(
    `cluster ${status.healthy ? 'HEALTHY' : 'NOT HEALTHY'} — machines ${up}/${status.machines.length} up, stores ${ok}/${status.stores.length} ok  (coordinator ${target})`,
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
      lines.push(`  ${op.id}  ${op.kind} of ${op.kind === 'drain' ? `machine ${op.machine}` : op.kind === 'rebalance' ? 'the cluster' : `store ${op.store}`}, at step ${op.step} since ${op.updatedAt.slice(11, 19)}${op.cancelRequested ? ', cancel requested' : ''}`);
    }
  }
  lines.push('', 'machines', machinesTable(status.machines));
  lines.push('', 'stores', status.stores.length ? storesTable(status.stores) : '  none yet: slotctl cluster apply FILE');
  return lines.join('\n');
}

export function applyReport(reply: ApplyClusterReply__Output, file: string, dryRun: boolean): string {
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
