// slotctl: the operator's CLI. Noun-verb commands, one file per noun under commands/; --json on every read verb;
// exit codes 0 ok, 1 error, 2 usage, 3 cluster not healthy.
import { Command, CommanderError, Option } from 'commander';
import { SLOTCTL_VERSION, describeError, isUserError } from '@slotctl/shared';
import { DEFAULT_COORDINATOR } from './admin-client.js';
import { EXIT, adminRunner } from './context.js';
import { registerCleanupCommands } from './commands/cleanup.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerDiskCommands } from './commands/disk.js';
import { registerEventsCommand } from './commands/events.js';
import { registerMachineCommands } from './commands/machine.js';
import { registerOperationsCommands } from './commands/operations.js';
import { registerPlanCommands } from './commands/plan.js';
import { registerSlotCommands } from './commands/slot.js';
import { registerStatusCommand } from './commands/status.js';
import { registerStoreCommands } from './commands/store.js';

// `slotctl … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

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

// The nouns are registered after the program is configured (each inherits exitOverride and the output settings)
// and in the order `slotctl --help` lists them.
const withAdmin = adminRunner(program);
registerStatusCommand(program, withAdmin);
registerMachineCommands(program, withAdmin);
registerStoreCommands(program, withAdmin);
registerSlotCommands(program, withAdmin);
registerEventsCommand(program, withAdmin);
registerClusterCommands(program, withAdmin);
registerOperationsCommands(program, withAdmin);
registerPlanCommands(program, withAdmin);
registerCleanupCommands(program, withAdmin);
registerDiskCommands(program, withAdmin);

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
