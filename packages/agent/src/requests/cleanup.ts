// cleanup: cyr_expire on the slot with the retentions the request carries, in the background, with the bytes it
// freed; a slot that does not run is answered, not cleaned. Kept in memory: the coordinator records the run when it
// is reported.
import type { CleanupReport } from '@slotctl/shared';
import { runCyrExpire } from '../cleanup/expire.js';
import { requestOf, type RequestHandler } from './handler.js';

const failed = (op: string, error: string, startedAt = new Date().toISOString()): CleanupReport & { op: string } => ({
  op, ok: false, exitCode: -1, startedAt, finishedAt: new Date().toISOString(), ms: 0, freedBytes: 0, error, tail: [],
});

export const cleanup: RequestHandler<CleanupReport & { op: string }> = {
  name: 'cleanup',
  waits: false,
  requested: (d) => requestOf(d, 'cleanup')?.id,
  mayRun: (s) => Boolean(s.layout),
  async run({ s, d, id, log, services }) {
    if (s.lifecycle !== 'serving') return failed(id, `slot ${s.name} is ${s.lifecycle}, not running: not cleaned`);
    const { expunged, deleted, duplicates, timeoutS } = requestOf(d, 'cleanup')!.cleanup;
    const layout = s.layout!;
    const startedAt = new Date().toISOString();
    try {
      // test hook: a broken config path for this one slot (SLOTCTL_TEST_CYR_EXPIRE_BREAK=SLOT)
      const conf = process.env.SLOTCTL_TEST_CYR_EXPIRE_BREAK === s.name ? `${layout.imapdConf}.missing` : layout.imapdConf;
      return {
        ...(await runCyrExpire({
          op: id,
          imapdConf: conf,
          retention: { expunged, deleted, duplicates },
          timeoutMs: Math.max(1, timeoutS) * 1000,
          waiting: async () => (await services.measure(s)).reduce((a, p) => a + Number(p.deletedBytes) + Number(p.expungedBytes), 0),
          log,
        })),
        op: id,
      };
    } catch (err) {
      return failed(id, (err as Error).message, startedAt);
    }
  },
  failed: (id, error) => failed(id, error),
  asResult: (r) => ({ cleanup: r }),
};
