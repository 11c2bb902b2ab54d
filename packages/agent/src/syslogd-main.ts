// slot-syslogd [--socket /dev/log] [--dir /run/slotctl/syslog]
import { Command } from 'commander';
import { SLOTCTL_VERSION } from '@slotctl/shared/base';
import { runSyslogd } from './logs/syslogd.js';

const program = new Command('slot-syslogd')
  .description('Receive syslog on /dev/log where no syslog daemon runs, and file Cyrus lines by slot for slot-agent.')
  .version(SLOTCTL_VERSION)
  .option('--socket <path>', 'syslog socket to own', '/dev/log')
  .option('--dir <dir>', 'where DIR/SLOT.log files are written', '/run/slotctl/syslog')
  .parse();
const opts = program.opts<{ socket: string; dir: string }>();
const server = await runSyslogd({ socketPath: opts.socket, dir: opts.dir });
if (!server) {
  console.error(`slot-syslogd: ${opts.socket} is already served; nothing to do`);
  process.exit(0);
}
