// slot-agent: one per mail host. Exit codes: 0 clean stop, 1 refused to start (message says why), 2 usage.
import { mkdirSync } from 'node:fs';
import { Command, Option } from 'commander';
import { SLOTCTL_VERSION, assertName, createLogger, describeError, isUserError } from '@slotctl/shared';
import { AgentSession } from './session/session.js';
import { AppliedStore } from './state/applied-store.js';

const program = new Command('slot-agent')
  .description('The slotctl agent: converges this machine to the coordinator\'s desired state and reports what it observes.')
  .version(SLOTCTL_VERSION)
  .addOption(new Option('--machine <name>', 'this machine\'s name in the cluster').env('SLOTCTL_MACHINE').makeOptionMandatory())
  .addOption(new Option('--coordinator <host:port>', 'coordinator address').env('SLOTCTL_COORDINATOR').default('127.0.0.1:7400'))
  .addOption(new Option('--state-dir <dir>', 'where the agent keeps what it applied').env('SLOTCTL_STATE_DIR').default('/var/lib/slotctl-agent'))
  .addOption(new Option('--log-level <level>', 'pino log level').env('SLOTCTL_LOG_LEVEL').default('info'))
  .addHelpText('after', '\nLogs are JSON lines on stdout. SIGTERM/SIGINT stop gracefully; a second signal forces the exit.');

program.parse();
const opts = program.opts<{ machine: string; coordinator: string; stateDir: string; logLevel: string }>();
const log = createLogger('slot-agent', { level: opts.logLevel }).child({ machine: opts.machine });

async function main(): Promise<void> {
  assertName(opts.machine, '--machine');
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  const applied = new AppliedStore(opts.stateDir, opts.machine);
  const slots = await applied.load();
  log.info({ coordinator: opts.coordinator, stateDir: opts.stateDir, slots: Object.keys(slots).length, version: SLOTCTL_VERSION }, 'agent starting');
  const session = new AgentSession({ machine: opts.machine, coordinator: opts.coordinator, applied, log });

  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    const force = setTimeout(() => {
      log.error('graceful stop took too long; exiting');
      process.exit(1);
    }, 10_000);
    force.unref();
    session.stop().then(() => {
      log.info('agent stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  session.start();
}

main().catch((err: unknown) => {
  const message = describeError(err);
  log.fatal({ err: isUserError(err) ? undefined : err }, `cannot start: ${message}`);
  console.error(`slot-agent: cannot start: ${message}`);
  process.exit(1);
});
