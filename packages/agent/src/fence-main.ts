// slot-fence --state-dir DIR: started (detached) by slot-agent; see fence/run.ts.
import { createWriteStream } from 'node:fs';
import { Command } from 'commander';
import { SLOTCTL_VERSION, createLogger } from '@slotctl/shared/base';
import { fencePaths } from './fence/fence-file.js';
import { runFence } from './fence/run.js';

const program = new Command('slot-fence')
  .description("Kills this machine's master slots and releases their service IPs when the agent's lease deadline passes, even if the agent hangs.")
  .version(SLOTCTL_VERSION)
  .requiredOption('--state-dir <dir>', "the agent's state directory (fence.json is read from it)")
  .option('--log-level <level>', 'pino log level', 'info')
  .parse();
const opts = program.opts<{ stateDir: string; logLevel: string }>();
const log = createLogger('slot-fence', { level: opts.logLevel, destination: createWriteStream(fencePaths(opts.stateDir).log, { flags: 'a' }) });
process.on('unhandledRejection', (err) => log.error({ err: err instanceof Error ? err.stack : String(err) }, 'unhandled rejection (a bug); the fence keeps running'));
await runFence(opts.stateDir, log);
