// cleanup: cyr_expire on the slot with the retentions the request carries, in the background, with the bytes it
// freed; a slot that does not run is answered, not cleaned. Kept in memory: the coordinator records the run when it
// is reported.
import type { CleanupReport } from '@slotctl/shared';
import { runCyrExpire } from '../cleanup/expire.js';
import { requestOf, type RequestHandler, type RequestJob } from './handler.js';

type Cleanup = CleanupReport & { op: string };

const failed = (op: string, error: string, startedAt = new Date().toISOString()): Cleanup => ({
  op, ok: false, exitCode: -1, startedAt, finishedAt: new Date().toISOString(), ms: 0, freedBytes: 0, error, tail: [],
});

export const cleanup: RequestHandler<Cleanup> = {
  name: 'cleanup',
  waits: false,
  requested: (d) => requestOf(d, 'cleanup')?.id,
  mayRun: (s) => Boolean(s.layout),
  async run(job) {
    const { report, ran } = await runCleanup(job);
    // counted where each run ends; only a run of cyr_expire has a duration (not a refusal, nor a throw before it)
    job.services.metrics?.cleanupRan(job.s.name, { ok: Boolean(report.ok), seconds: ran ? Number(report.ms) / 1000 : undefined, freedBytes: Number(report.freedBytes) });
    return report;
  },
  failed: (id, error) => failed(id, error),
  asResult: (r) => ({ cleanup: r }),
};

async function runCleanup({ s, d, id, log, services }: RequestJob): Promise<{ report: Cleanup; ran: boolean }> {
  if (s.lifecycle !== 'serving') return { report: failed(id, `slot ${s.name} is ${s.lifecycle}, not running: not cleaned`), ran: false };
  const { expunged, deleted, duplicates, timeoutS } = requestOf(d, 'cleanup')!.cleanup;
  const layout = s.layout!;
  const startedAt = new Date().toISOString();
  try {
    // test hook: a broken config path for this one slot (SLOTCTL_TEST_CYR_EXPIRE_BREAK=SLOT)
    const conf = process.env.SLOTCTL_TEST_CYR_EXPIRE_BREAK === s.name ? `${layout.imapdConf}.missing` : layout.imapdConf;
    const report = await runCyrExpire({
      op: id,
      imapdConf: conf,
      retention: { expunged, deleted, duplicates },
      timeoutMs: Math.max(1, timeoutS) * 1000,
      waiting: async () => (await services.measure(s)).reduce((a, p) => a + Number(p.deletedBytes) + Number(p.expungedBytes), 0),
      log,
    });
    return { report: { ...report, op: id }, ran: true };
  } catch (err) {
    return { report: failed(id, (err as Error).message, startedAt), ran: false };
  }
}
