// slotctl: the operator's CLI. Noun-verb commands; --json on every read verb; exit codes 0 ok, 1 error,
// 2 usage, 3 cluster not healthy.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { NotFoundError, SLOTCTL_VERSION, UnavailableError, ValidationError, describeError, isUserError, parseDuration } from '@slotctl/shared';
import { Admin, DEFAULT_COORDINATOR } from './client.js';
import { applyReport, statusScreen } from './screens.js';
import { registerOperationCommands } from './operations.js';
import { registerMachineLossCommands } from './machine-loss.js';
import { registerPlacementCommands } from './placement.js';
import { registerCleanupCommands } from './cleanup.js';
import { eventsText, machinesTable, slotDetail, slotsTable, storesTable } from './format.js';

export const EXIT = { ok: 0, error: 1, usage: 2, unhealthy: 3 } as const;

// `slotctl … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

interface GlobalOptions {
  coordinator: string;
  rpcTimeout: string;
}

const program = new Command('slotctl')
  .description('Operate a slotctl cluster of Cyrus IMAP slots: status, machines, stores, slots, planned moves (switchover, drain), machine loss (failover, recover, retire), placement (plan layout|whatif|rebalance), cleanup and disks, operations, events, cluster description.')
  .version(SLOTCTL_VERSION)
  .addOption(
    new Option('--coordinator <host:port>', 'coordinator address').env('SLOTCTL_COORDINATOR').default(DEFAULT_COORDINATOR),
  )
  // not --timeout: verbs that wait (switchover, drain, replay) have their own --timeout
  .option('--rpc-timeout <duration>', 'give up on a call to the coordinator after this long', '5s')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 error, 2 usage, 3 cluster not healthy (status).
Examples:
  slotctl status
  slotctl cluster apply cluster.yaml --dry-run
  slotctl events --since 10m --store s01 --json
  slotctl store switchover s01 --wait
  slotctl machine drain m3`,
  );

function admin(): Admin {
  const opts = program.opts<GlobalOptions>();
  return new Admin(opts.coordinator, parseDuration(opts.rpcTimeout, '--rpc-timeout'));
}

async function withAdmin<T>(fn: (a: Admin) => Promise<T>): Promise<T> {
  const a = admin();
  try {
    return await fn(a);
  } finally {
    a.close();
  }
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

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
        else process.stdout.write(`${statusScreen(status, a.target)}\n`);
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

const machine = program.command('machine').description('Machines (mail hosts, one agent each).');
machine
  .command('list')
  .description('Machines with liveness, agent connection and slot counts.')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const reply = await withAdmin((a) => a.listMachines());
    if (opts.json) printJson(reply.machines);
    else process.stdout.write(`${machinesTable(reply.machines)}\n`);
  });

const store = program.command('store').description('Stores (a master slot and a replica slot on two machines).');
store
  .command('list')
  .description('Stores with their master, replica, epoch, health and backlog.')
  .option('--json', 'print as JSON')
  .action(async (opts: { json?: boolean }) => {
    const reply = await withAdmin((a) => a.listStores());
    if (opts.json) printJson(reply.stores);
    else process.stdout.write(`${storesTable(reply.stores)}\n`);
  });

const slot = program.command('slot').description('Slots (one Cyrus instance each).');
slot
  .command('list')
  .description('Slots with their machine, store, desired and observed role, state, epoch and backlog.')
  .option('--machine <machine>', 'only the slots of this machine')
  .option('--json', 'print as JSON')
  .action(async (opts: { machine?: string; json?: boolean }) => {
    const reply = await withAdmin((a) => a.listSlots({ machine: opts.machine ?? '' }));
    if (opts.json) printJson(reply.slots);
    else process.stdout.write(reply.slots.length ? `${slotsTable(reply.slots)}\n` : 'no slots\n');
  });

async function findSlot(a: Admin, name: string) {
  const found = (await a.listSlots({ machine: '' })).slots.find((s) => s.name === name);
  if (!found) throw new NotFoundError(`no slot "${name}"`, { hint: 'slotctl slot list shows the slots' });
  return found;
}

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

program
  .command('events')
  .description('Recorded changes of state with their reasons, oldest first.')
  .option('--since <when>', 'a duration back from now (10m, 2h) or an ISO time')
  .option('--store <store>', 'only events of this store')
  .option('--machine <machine>', 'only events of this machine')
  .option('--limit <n>', 'at most this many (the newest)', '100')
  .option('--json', 'print as JSON')
  .action(async (opts: { since?: string; store?: string; machine?: string; limit: string; json?: boolean }) => {
    const limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 1) throw new ValidationError(`--limit "${opts.limit}" is not a positive whole number`);
    const since = opts.since ? sinceToIso(opts.since) : '';
    const reply = await withAdmin((a) => a.listEvents({ since, store: opts.store ?? '', machine: opts.machine ?? '', limit }));
    if (opts.json) printJson(reply.events);
    else process.stdout.write(reply.events.length ? `${eventsText(reply.events)}\n` : 'no events\n');
  });

function sinceToIso(since: string): string {
  if (/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/.test(since)) return new Date(Date.now() - parseDuration(since, '--since')).toISOString();
  const t = Date.parse(since);
  if (Number.isNaN(t)) throw new ValidationError(`--since "${since}" is neither a duration (10m, 2h) nor a time (2026-11-29T10:00:00Z)`);
  return new Date(t).toISOString();
}

const cluster = program.command('cluster').description('The cluster description: machines and stores.');
cluster
  .command('apply')
  .description('Declare machines and stores from a YAML or JSON file ("-" reads stdin). All or nothing: any problem writes nothing.')
  .argument('<file>', 'cluster description (see deploy/cluster.example.yaml)')
  .option('--dry-run', 'show what would change; change nothing')
  .option('--prune', 'remove machines and stores that the file no longer names (mail on disk is never touched)')
  .option('--json', 'print the result as JSON')
  .action(async (file: string, opts: { dryRun?: boolean; prune?: boolean; json?: boolean }) => {
    let text: string;
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8');
    } catch (err) {
      throw new ValidationError(`cannot read ${file}: ${(err as Error).message}`);
    }
    const reply = await withAdmin((a) =>
      a.applyCluster({ text, fileName: file === '-' ? 'stdin' : file, dryRun: !!opts.dryRun, prune: !!opts.prune }),
    );
    if (opts.json) printJson(reply);
    else process.stdout.write(`${applyReport(reply, file, !!opts.dryRun)}\n`);
    if (!reply.ok) process.exitCode = EXIT.error;
  });

registerOperationCommands(program, { store, machine }, withAdmin, printJson);
registerMachineLossCommands({ store, machine }, withAdmin, printJson);
registerPlacementCommands(program, { machine }, withAdmin, printJson);
registerCleanupCommands(program, withAdmin, printJson);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (isUserError(err)) {
    process.stderr.write(`slotctl: ${describeError(err)}\n`);
    process.exitCode = EXIT.error;
  } else {
    process.stderr.write(`slotctl: internal error (a bug, please report it): ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = EXIT.error;
  }
}
