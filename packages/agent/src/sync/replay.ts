// The replay primitive (the drain before a cut-over): with the slot's cyrmaster stopped, push every leftover sync
// log to the replica, oldest batch first; delete a file only after sync_client exited 0 for it; stop at the first
// failure and say which file and why. Nothing else ever deletes a sync log.
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { execa } from 'execa';
import type { Logger } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from '../cyrus/install.js';
import { mailboxOfLine, replayOrder } from './backlog.js';
import { cyrusOwner } from '../slot/files.js';
import type { SlotLayout } from '../slot/layout.js';
import { tcpAccepts } from '../slot/process.js';
import { openSlotRoot } from '../slot/roots.js';
import { using, type SafeDir } from '../slot/safe-fs.js';

export interface ReplayResult {
  ok: boolean;
  replayed: string[];
  failedFile?: string;
  error?: string;
  remaining: string[];
  /** Every mailbox the replayed files named (internal names; `user:NAME` for a whole user). */
  mailboxes: string[];
  ms: number;
}

export interface ReplayTarget {
  /** The replica's slot IP and sync port: checked before each file so a down replica fails at once. */
  ip: string;
  port: number;
}

export async function replaySyncLogs(layout: SlotLayout, target: ReplayTarget, log: Logger, timeoutMs = 120_000): Promise<ReplayResult> {
  const started = performance.now();
  if (!existsSync(layout.syncDir)) return { ok: true, replayed: [], remaining: [], mailboxes: [], ms: performance.now() - started };
  // root reads and removes the logs: through the open directory, never through a link Cyrus could have put there
  const meta = await openSlotRoot(layout.metaPath, [], await cyrusOwner());
  return using(meta, () => using(meta.walk(relative(layout.metaPath, layout.syncDir)), (sync) => replayIn(sync, layout.imapdConf, target, log, timeoutMs, started)));
}

async function replayIn(sync: SafeDir, imapdConf: string, target: ReplayTarget, log: Logger, timeoutMs: number, started: number): Promise<ReplayResult> {
  const names = replayOrder(await sync.list());
  const replayed: string[] = [];
  const mailboxes = new Set<string>();
  for (const [i, name] of names.entries()) {
    const file = join(sync.path, name);
    for (const line of (await sync.readFile(name)).split('\n')) {
      const mailbox = mailboxOfLine(line);
      if (mailbox) mailboxes.add(mailbox);
    }
    if (!(await tcpAccepts(target.ip, target.port, 1000))) {
      const error = `replica ${target.ip}:${target.port} refuses connections`;
      log.warn({ file, why: error }, 'replay failed: keeping this file and the rest');
      return { ok: false, replayed, failedFile: name, error, remaining: names.slice(i), mailboxes: [...mailboxes], ms: performance.now() - started };
    }
    // -o: a refused connection fails at once instead of retrying for ever.
    const { file: cmd, args } = asCyrusTool(cyrusBinary('sync_client'), ['-C', imapdConf, '-o', '-r', '-f', file]);
    const result = await execa(cmd, args, { reject: false, timeout: timeoutMs, all: true });
    if (result.exitCode !== 0) {
      const why = result.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${result.exitCode ?? result.signal}`;
      const output = (result.all ?? '').trim().split('\n').slice(-3).join(' | ');
      log.warn({ file, why, output }, 'replay failed: keeping this file and the rest');
      return { ok: false, replayed, failedFile: name, error: `${why}${output ? `: ${output}` : ''}`, remaining: names.slice(i), mailboxes: [...mailboxes], ms: performance.now() - started };
    }
    await sync.remove(name);
    replayed.push(name);
    log.info({ file }, 'replayed sync log to the replica and removed it');
  }
  return { ok: true, replayed, remaining: [], mailboxes: [...mailboxes], ms: performance.now() - started };
}
