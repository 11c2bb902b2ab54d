// slotctl: the operator's CLI. Noun-verb commands, one file per noun under commands/; --json on every read verb;
// exit codes 0 ok, 1 error, 2 usage, 3 cluster not healthy.
import { Command, CommanderError, Option } from 'commander';
import { SLOTCTL_VERSION, TLS_FLAG_HELP, describeError, isUserError } from '@slotctl/shared';
import { DEFAULT_COORDINATOR } from './admin-client.js';
import { DEFAULT_TLS_DIR, EXIT, adminRunner } from './context.js';
import { registerCleanupCommands } from './commands/cleanup.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerDiskCommands } from './commands/disk.js';
import { registerEventsCommand } from './commands/events.js';
import { registerMachineCommands } from './commands/machine.js';
import { registerOperationsCommands } from './commands/operations.js';
import { registerPkiCommands } from './commands/pki.js';
import { registerPlanCommands } from './commands/plan.js';
import { registerSlotCommands } from './commands/slot.js';
import { registerStatusCommand } from './commands/status.js';
import { registerStoreCommands } from './commands/store.js';
import { WIDTH_HELP } from './table-fit.js';

// `slotctl … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(EXIT.ok);
  throw err;
});

const program = new Command('slotctl')
  .description('Operate a slotctl cluster of Cyrus IMAP slots: status, machines, stores, slots, planned moves (switchover, drain), machine loss (failover, recover, retire), placement (plan layout|whatif|rebalance), cleanup and disks, operations, events, cluster description.')
  .version(SLOTCTL_VERSION)
  .addOption(
    new Option(
      '--coordinator <host:port,...>',
      'coordinator address, or a comma-separated list of the coordinators of which one leads (etcd backend): a call a follower refuses is made again at the leader it names, one that cannot connect at the next address',
    )
      .env('SLOTCTL_COORDINATOR')
      .default(DEFAULT_COORDINATOR),
  )
  // not --timeout: verbs that wait (switchover, drain, replay) have their own --timeout
  .option('--rpc-timeout <duration>', 'give up on a call to the coordinator after this long', '5s')
  .addOption(new Option('--tls-dir <dir>', `${TLS_FLAG_HELP.tlsDir} (an operator's: one reader-, operator- or admin-NAME certificate) [default: ${DEFAULT_TLS_DIR}]`).env('SLOTCTL_TLS_DIR'))
  .addOption(new Option('--tls-ca <file>', TLS_FLAG_HELP.tlsCa).env('SLOTCTL_TLS_CA'))
  .addOption(new Option('--tls-cert <file>', TLS_FLAG_HELP.tlsCert).env('SLOTCTL_TLS_CERT'))
  .addOption(new Option('--tls-key <file>', TLS_FLAG_HELP.tlsKey).env('SLOTCTL_TLS_KEY'))
  // SLOTCTL_INSECURE=1 only (commander's .env() would take any value, even 0, as yes)
  .option('--insecure', `${TLS_FLAG_HELP.insecure} (env: SLOTCTL_INSECURE=1)`, process.env.SLOTCTL_INSECURE === '1')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  .addHelpText(
    'after',
    `
Exit codes: 0 ok, 1 error, 2 usage, 3 cluster not healthy (status).
${WIDTH_HELP}
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
registerPkiCommands(program);

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
