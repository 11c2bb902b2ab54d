// Manual runs of the namespace cluster: `pnpm cluster:netns [--machines 5] [--slots 4]` brings it up, prints how to
// reach it, and tears everything down on Ctrl-C.
import { join } from 'node:path';
import { benchArg } from '../../bench/common.js';
import { BIN } from '../../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../../tools/syslogd.js';
import { tempDir } from '../support/fixtures.js';
import { NetnsCluster } from './netns.js';

const dir = tempDir('netns-manual');
const cluster = new NetnsCluster({
  dir,
  id: 'm',
  machines: Number(benchArg('machines', '5')),
  slotsPerMachine: Number(benchArg('slots', '4')),
  log: (line) => console.log(`netns: ${line}`),
});
const stopSyslogd = stopSyslogdStartedAfterNow();
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await cluster.destroy();
  stopSyslogd();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
try {
  await cluster.start();
  console.log(`
netns: up. Logs and slots in ${dir}. Try:
  ip netns exec ${cluster.ns('co')} node ${BIN.slotctl} --coordinator ${cluster.coordinatorTarget} status
  ip netns exec ${cluster.ns('cl')} curl -s 'imap://10.231.3.1:1143/INBOX' -u amy:any
Faults from another shell: ip -n ${cluster.switchNs} link set p-m1 down   (and up again)
Ctrl-C tears everything down (or, after a killed run: pnpm test:cleanup).`);
  await new Promise(() => undefined);
} catch (err) {
  console.error(`netns: ${(err as Error).message}; logs in ${join(dir, 'logs')}`);
  await stop();
}
