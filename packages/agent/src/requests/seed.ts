// seed: a master's full initial sync to its store's new, empty replica (sync_client -u, user by user), in the
// background: it takes a while. Kept in memory: a seed is safe to run again. The new replica is the one being moved
// in while a replica move seeds it (move_target_ip), else the store's replica.
import type { SeedProgress, SeedReport } from '@slotctl/shared';
import { seedReplica } from '../sync/seed.js';
import { requestOf, type RequestHandler } from './handler.js';

/** Per slot: the running seed's progress (a seed runs once at a time per slot). */
const running = new Map<string, SeedProgress>();
/** Reports of progress at most this often (each is a report of the whole machine). */
const PROGRESS_EVERY_MS = 1000;

export const seed: RequestHandler<SeedReport & { op: string }> = {
  name: 'seed',
  waits: false,
  requested: (d) => (d.role === 'MASTER' ? requestOf(d, 'seed')?.id : undefined),
  mayRun: (s, d) => Boolean(s.layout) && Boolean(d.moveTargetIp || d.peerIp) && s.lifecycle === 'serving',
  async run({ s, d, id, log, services, changed }) {
    let reported = 0;
    const onProgress = (p: SeedProgress) => {
      running.set(s.name, p);
      if (Date.now() - reported < PROGRESS_EVERY_MS) return;
      reported = Date.now();
      changed();
    };
    try {
      return { ...(await seedReplica(id, s.layout!.imapdConf, { ip: d.moveTargetIp || d.peerIp, port: services.runtime.ports.sync }, log, undefined, onProgress, requestOf(d, 'seed')?.seed.fullSpeed ? 0 : (services.seedRateLimit ?? 0))), op: id };
    } catch (err) {
      log.error({ err: (err as Error).message }, 'full initial sync failed');
      return { op: id, ok: false, users: 0, mailboxes: 0, messages: 0, ms: 0, error: (err as Error).message, failed: [], finishedAt: new Date().toISOString() };
    } finally {
      running.delete(s.name);
    }
  },
  asResult: (r) => ({ seed: r }),
  progress: (slot) => {
    const p = running.get(slot);
    return p ? { seedProgress: p } : undefined;
  },
};
