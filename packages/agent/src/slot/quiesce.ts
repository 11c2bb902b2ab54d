// A master about to stop lets the deliveries in flight on its service IP finish before the address goes.
import type { Logger } from '@slotctl/shared';
import { readCyrusFile, writeCyrusFile } from './files.js';
import type { SlotLayout } from './layout.js';
import { socketsAt } from './process.js';

/**
 * How long a stopping master waits for its LMTP listener to close and the deliveries in flight on its service IP to
 * end. Measured on a 2-core host: the listener outlived the SIGHUP by up to 3.0 s when many slots stopped at once,
 * and a delivery waited ~3 s behind a stalled rolling sync_client (restarted after 2 s without progress); 3 s was
 * too short there, and a delivery cut after its data comes back from the MTA as a second copy. MTAs wait minutes for
 * that reply (Postfix's lmtp_data_done_timeout: 600 s), so waiting longer loses nothing; the bound only keeps a hung
 * delivery from holding the stop, and only a stop with deliveries in flight takes it.
 */
export const LMTP_DRAIN_MS = 15_000;

/**
 * Closes the master's listeners on the service IP (cyrus.conf without them + SIGHUP: running children go on) and
 * waits, up to LMTP_DRAIN_MS, until the LMTP listener is gone and no delivery is in flight. Releasing the address
 * under a delivery that was already committed would lose its 250, and the MTA's retry would make a duplicate (seen
 * under load: one in ~1,500 messages over 20 switchovers). The drain is logged with its length, and at warning level
 * when it took over a second. Never throws: a stop goes on whatever happens here.
 */
export async function quiesceService(input: { pid: number; ip: string; lmtpPort: number; layout: SlotLayout; log: Logger }): Promise<void> {
  const { ip, log } = input;
  const started = performance.now();
  try {
    const conf = await readCyrusFile(input.layout, input.layout.cyrusConf);
    const quiet = conf
      .split('\n')
      .filter((l) => !/^\s+(imapsvc|lmtp)\s/.test(l))
      .join('\n');
    if (quiet !== conf) {
      await writeCyrusFile(input.layout, input.layout.cyrusConf, quiet);
      process.kill(input.pid, 'SIGHUP');
    }
    // Counting deliveries right after the SIGHUP is not enough: until cyrmaster has closed the listener (measured
    // ~50 ms), a new connection is still accepted, and releasing the address under it would cut it after its data.
    let sockets = await socketsAt(ip, input.lmtpPort);
    while ((sockets.listening > 0 || sockets.established > 0) && performance.now() - started < LMTP_DRAIN_MS) {
      await new Promise((r) => setTimeout(r, 20));
      sockets = await socketsAt(ip, input.lmtpPort);
    }
    const ms = Math.round(performance.now() - started);
    if (sockets.listening > 0 || sockets.established > 0) log.warn({ ip, ms, ...sockets }, 'LMTP listener or deliveries still there after the drain time: stopping anyway');
    else if (ms > 1000) log.warn({ ip, ms }, 'service listeners closed, no delivery in flight: the drain took over a second (a busy host, or a delivery held up)');
    else log.info({ ip, ms }, 'service listeners closed, no delivery in flight');
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not quiesce the service listeners; stopping anyway');
  }
}
