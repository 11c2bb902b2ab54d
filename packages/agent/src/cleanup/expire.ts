// One cleanup of one slot: `cyr_expire -C SLOT/imapd.conf` with the cluster's retentions (expunged messages `-X`,
// delayed-deleted folders `-D`, duplicate-delivery records `-E`; `-a`: annotations are not looked up). It runs on
// masters and replicas alike: measured, cyr_expire on a master removes its own copy only, the replica keeps its own
// until it runs there too. A run that outlives its timeout is killed (SIGKILL) and reported.
import { execa } from 'execa';
import type { CleanupReport, Logger } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from '../cyrus/install.js';

export interface Retention {
  expunged: string;
  deleted: string;
  duplicates: string;
}

/** Cyrus durations: a number with an optional unit (d, h, m, s); 0 keeps nothing. */
export function assertRetention(value: string, what: string): string {
  if (!/^\d{1,6}[dhms]?$/.test(value)) throw new Error(`${what} "${value}" is not a Cyrus duration (e.g. 7d, 12h, 0)`);
  return value;
}

const TAIL = 20;

export async function runCyrExpire(input: {
  op: string;
  imapdConf: string;
  retention: Retention;
  timeoutMs: number;
  /** Bytes waiting for cleanup on the slot's partitions, measured before and after. */
  waiting: () => Promise<number>;
  log: Logger;
}): Promise<CleanupReport> {
  const startedAt = new Date();
  const r = input.retention;
  const args = ['-C', input.imapdConf, '-X', assertRetention(r.expunged, 'expunged retention'), '-D', assertRetention(r.deleted, 'deleted retention'), '-E', assertRetention(r.duplicates, 'duplicates retention'), '-a', '-v'];
  const before = await input.waiting().catch(() => 0);
  const { file, args: argv } = asCyrusTool(cyrusBinary('cyr_expire'), args);
  input.log.info({ retention: r, timeoutMs: input.timeoutMs }, 'cleanup: cyr_expire starts');
  const result = await execa(file, argv, { reject: false, timeout: input.timeoutMs, killSignal: 'SIGKILL', all: true, maxBuffer: 64e6 });
  const after = await input.waiting().catch(() => before);
  const finishedAt = new Date();
  const tail = (result.all ?? '').trim().split('\n').filter(Boolean).slice(-TAIL).map((l) => l.slice(0, 500));
  // exit 0 is a finished run even if the timer fired too: on a busy host its callback can run after the child
  // exited and before the exit was seen (the kill then hit nothing; seen in CI with two busy loops)
  const ok = result.exitCode === 0;
  const killed = !ok && result.timedOut;
  const error = ok
    ? ''
    : killed
      ? `cyr_expire did not finish within ${Math.round(input.timeoutMs / 1000)} s: killed`
      : `cyr_expire exited ${result.exitCode ?? result.signal}${tail.length ? `: ${tail.at(-1)}` : ''}`;
  const report: CleanupReport = {
    op: input.op,
    ok,
    exitCode: ok ? 0 : killed ? -1 : (result.exitCode ?? -1),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    ms: finishedAt.getTime() - startedAt.getTime(),
    freedBytes: before - after,
    error,
    tail,
  };
  if (ok) input.log.info({ ms: report.ms, freedBytes: report.freedBytes }, 'cleanup: cyr_expire done');
  else input.log.warn({ err: error, tail: tail.slice(-3) }, 'cleanup: cyr_expire failed');
  return report;
}
