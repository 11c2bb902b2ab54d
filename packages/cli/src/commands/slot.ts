// slotctl slot …: one Cyrus instance at a time: list, show, logs, stop and start (maintenance), replay (push a
// stopped slot's leftover sync logs to its replica).
import type { Command } from 'commander';
import { NotFoundError, UnavailableError, formatDuration, parseDuration, type SlotInfo__Output as SlotInfo } from '@slotctl/shared';
import type { Admin } from '../admin-client.js';
import { EXIT, printJson, type WithAdmin } from '../context.js';
import { ago, backlogBrief, backlogCell } from '../format.js';
import { WIDE_HELP, fitTable, outputWidth, type TableSpec } from '../table-fit.js';

// The ip is configuration; the store is in the slot's name unless someone named it otherwise (slot show has it);
// the role and state words are cut before the backlog figures.
const SLOTS: TableSpec<SlotInfo> = {
  columns: [
    { head: 'slot', cell: (s) => s.name },
    { head: 'machine', cell: (s) => s.machine },
    { head: 'store', cell: (s) => s.store },
    { head: 'role', cell: (s) => s.desiredRole.toLowerCase() + (s.role && s.role !== s.desiredRole ? ` (runs ${s.role.toLowerCase()})` : '') },
    { head: 'state', cell: (s) => (s.stopped ? 'stopped by operator, ' : '') + (s.state ? s.state.toLowerCase() : 'unknown') },
    { head: 'epoch', cell: (s) => (s.epochApplied === s.storeEpoch ? s.epochApplied : `${s.epochApplied} (store ${s.storeEpoch})`) },
    { head: 'ip', cell: (s) => s.ip },
    { head: 'backlog', cell: (s) => backlogCell(s), short: { cell: (s) => backlogBrief(s) } },
  ],
  fit: [{ drop: 'ip' }, { shorten: 'backlog' }, { drop: 'epoch' }, { truncate: 'role', min: 7 }, { truncate: 'state', min: 8 }, { drop: 'store' }, { truncate: 'backlog', min: 12 }],
};

export function slotsTable(slots: readonly SlotInfo[], width = Infinity): string {
  return fitTable(SLOTS, slots, width);
}

function slotDetail(s: SlotInfo): string {
  const b = s.backlog;
  const lines = [
    `slot ${s.name} on ${s.machine}, store ${s.store}`,
    `  role        ${s.desiredRole.toLowerCase()} (epoch ${s.storeEpoch}); agent applied epoch ${s.epochApplied}${s.role ? ` as ${s.role.toLowerCase()}` : ''}`,
    `  state       ${s.state ? s.state.toLowerCase() : 'unknown'}${s.stopped ? ' (stopped by operator)' : ''}${s.pid ? `, cyrmaster pid ${s.pid}` : ''}`,
    `  why         ${s.stateReason || '-'}`,
    `  crashes     ${s.crashesInWindow} in the last minute`,
    `  address     ${s.ip}; data ${s.dataPath}; meta ${s.metaPath}`,
    `  backlog     ${b && b.files ? `${b.files} file(s), ${b.bytes} bytes, ${b.mailboxes} mailbox(es), oldest change ${formatDuration(Number(b.oldestChangeAgeMs))} ago` : 'empty'}${b?.stalled ? `\n  STALLED     ${b.stallReason}` : ''}${b?.unloggedSince ? `\n  UNLOGGED    changes since ${b.unloggedSince} may be missing from its sync log (meta partition full or failing): free space there` : ''}`,
    `  last error  ${s.lastError || '-'}`,
    `  last replay ${s.replay?.op ? (s.replay.ok ? `ok, ${s.replay.replayed.length} file(s) in ${s.replay.ms} ms` : `FAILED at ${s.replay.failedFile || '-'}: ${s.replay.error}`) + ` (${s.replay.op}, ${s.replay.finishedAt})` : '-'}`,
    `  reported    ${ago(s.reportedAt)}`,
    '  recent log:',
    ...(s.recentLog.length ? s.recentLog.slice(-10).map((l) => `    ${l}`) : ['    (none reported)']),
  ];
  return lines.join('\n');
}

async function findSlot(a: Admin, name: string) {
  const found = (await a.listSlots({ machine: '' })).slots.find((s) => s.name === name);
  if (!found) throw new NotFoundError(`no slot "${name}"`, { hint: 'slotctl slot list shows the slots' });
  return found;
}

export function registerSlotCommands(program: Command, withAdmin: WithAdmin): void {
  const slot = program.command('slot').description('Slots (one Cyrus instance each).');

  slot
    .command('list')
    .description('Slots with their machine, store, desired and observed role, state, epoch and backlog.')
    .option('--machine <machine>', 'only the slots of this machine')
    .option('--json', 'print as JSON')
    .option('--wide', WIDE_HELP)
    .action(async (opts: { machine?: string; json?: boolean; wide?: boolean }) => {
      const reply = await withAdmin((a) => a.listSlots({ machine: opts.machine ?? '' }));
      if (opts.json) printJson(reply.slots);
      else process.stdout.write(reply.slots.length ? `${slotsTable(reply.slots, outputWidth(opts))}\n` : 'no slots\n');
    });

  slot
    .command('show')
    .description('One slot: role, epoch, state and why, backlog, last error, recent Cyrus log lines.')
    .argument('<slot>', 'slot name')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { json?: boolean }) => {
      const found = await withAdmin((a) => findSlot(a, name));
      if (opts.json) printJson(found);
      else process.stdout.write(`${slotDetail(found)}\n`);
    });

  slot
    .command('logs')
    .description("The last lines of the slot's Cyrus log, as its agent last reported them.")
    .argument('<slot>', 'slot name')
    .option('-n, --lines <n>', 'how many lines', '20')
    .option('--json', 'print as JSON')
    .action(async (name: string, opts: { lines: string; json?: boolean }) => {
      const found = await withAdmin((a) => findSlot(a, name));
      const lines = found.recentLog.slice(-Number(opts.lines));
      if (opts.json) printJson(lines);
      else process.stdout.write(lines.length ? `${lines.join('\n')}\n` : `no log lines reported for ${name} yet\n`);
    });

  for (const [verb, run] of [['stop', false], ['start', true]] as const) {
    slot
      .command(verb)
      .description(
        run
          ? 'Let a stopped slot run again (also clears a crash loop).'
          : 'Stop a slot and keep it stopped (maintenance). A stopped master means its store serves no mail.',
      )
      .argument('<slot>', 'slot name')
      .option('--reason <text>', 'recorded in the event')
      .option('--json', 'print the slot as JSON')
      .action(async (name: string, opts: { reason?: string; json?: boolean }) => {
        const reply = await withAdmin((a) => a.setSlotRun({ slot: name, run, reason: opts.reason ?? '' }));
        if (opts.json) printJson(reply.slot);
        else process.stdout.write(`slot ${name}: ${run ? 'start' : 'stop'} requested; the agent converges to it (slotctl slot show ${name})\n`);
      });
  }

  slot
    .command('replay')
    .description(
      "Replay a stopped slot's leftover sync logs to its replica (sync_client -r -f per file, each deleted only after it succeeded). " +
        'The slot must be stopped (slotctl slot stop). Exits 1 if a file could not be replayed: that file and the rest are kept.',
    )
    .argument('<slot>', 'slot name')
    .option('--wait', 'wait for the result (default: just ask)')
    .option('--timeout <duration>', 'with --wait: give up after this long', '120s')
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { wait?: boolean; timeout: string; json?: boolean }) => {
      await withAdmin(async (a) => {
        const { op } = await a.replaySlot(name);
        if (!opts.wait) {
          if (opts.json) printJson({ op });
          else process.stdout.write(`slot ${name}: replay requested (${op}); see slotctl slot show ${name}\n`);
          return;
        }
        const deadline = Date.now() + parseDuration(opts.timeout, '--timeout');
        for (;;) {
          const found = await findSlot(a, name);
          if (found.replay?.op === op) {
            if (opts.json) printJson(found.replay);
            else if (found.replay.ok) process.stdout.write(`slot ${name}: replayed ${found.replay.replayed.length} file(s) (${found.replay.replayed.join(', ') || 'none left'}) in ${found.replay.ms} ms\n`);
            else process.stdout.write(`slot ${name}: replay FAILED at ${found.replay.failedFile || '-'}: ${found.replay.error}; that file and the rest are kept\n`);
            if (!found.replay.ok) process.exitCode = EXIT.error;
            return;
          }
          if (Date.now() > deadline) throw new UnavailableError(`no replay result for ${name} within ${opts.timeout}`, { hint: `is its agent connected? slotctl slot show ${name}` });
          await new Promise((r) => setTimeout(r, 100));
        }
      });
    });
}
