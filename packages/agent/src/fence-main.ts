// slot-fence --state-dir DIR: started (detached) by slot-agent; see fence/run.ts.
import { createWriteStream } from 'node:fs';
import { getPriority } from 'node:os';
import { Command } from 'commander';
import { SLOTCTL_VERSION, createLogger, setOwnNice } from '@slotctl/shared/base';
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
// started in a session of its own, it inherits the agent's nice value but not its scheduling group: it takes the
// same priority for that group, or a saturated host would fence late
setOwnNice(getPriority(), log);
await runFence(opts.stateDir, log);
