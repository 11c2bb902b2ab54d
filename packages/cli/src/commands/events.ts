// slotctl events: the recorded changes of state with their reasons (a top-level verb: it spans every noun).
import type { Command } from 'commander';
import { ValidationError, parseDuration, type EventInfo__Output as EventInfo } from '@slotctl/shared';
import { positive, printJson, type WithAdmin } from '../context.js';

function eventsText(events: readonly EventInfo[]): string {
  return events
    .map((e) => {
      const where = [e.machine && `machine=${e.machine}`, e.store && `store=${e.store}`, e.slot && `slot=${e.slot}`, e.epoch ? `epoch=${e.epoch}` : '', e.op && `op=${e.op}`, e.actor && `by=${e.actor}`]
        .filter(Boolean)
        .join(' ');
      return `${e.at}  #${e.id}  ${e.kind}  ${where}  ${e.reason}`;
    })
    .join('\n');
}

function sinceToIso(since: string): string {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(since)) return new Date(Date.now() - parseDuration(since, '--since')).toISOString();
  const t = Date.parse(since);
  if (Number.isNaN(t)) throw new ValidationError(`--since "${since}" is neither a duration (10m, 2h) nor a time (2026-11-29T10:00:00Z)`);
  return new Date(t).toISOString();
}

export function registerEventsCommand(program: Command, withAdmin: WithAdmin): void {
  program
    .command('events')
    .description('Recorded changes of state with their reasons, oldest first.')
    .option('--since <when>', 'a duration back from now (10m, 2h) or an ISO time')
    .option('--store <store>', 'only events of this store')
    .option('--machine <machine>', 'only events of this machine')
    .option('--who <name>', 'only what this caller did: its calls (the name in its certificate) and the operations they started')
    .option('--limit <n>', 'at most this many (the newest)', '100')
    .option('--json', 'print as JSON')
    .action(async (opts: { since?: string; store?: string; machine?: string; who?: string; limit: string; json?: boolean }) => {
      const limit = positive(opts.limit, '--limit');
      const since = opts.since ? sinceToIso(opts.since) : '';
      const reply = await withAdmin((a) => a.listEvents({ since, store: opts.store ?? '', machine: opts.machine ?? '', who: opts.who ?? '', limit }));
      if (opts.json) printJson(reply.events);
      else process.stdout.write(reply.events.length ? `${eventsText(reply.events)}\n` : 'no events\n');
    });
}
