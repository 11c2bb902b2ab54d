// A full initial sync from a master to a new, empty replica (re-replication after a machine is retired): every user
// with `sync_client -u` in batches, every shared mailbox with `-m`. Measured on Cyrus 3.6: `-u` and `-A` both copy a
// user whole (mailboxes, messages, subscriptions, quota); `-u` per batch is kept because one bad user then fails only
// its batch, which is retried user by user, and the result names exactly who did not copy. The master keeps serving
// and its rolling sync_client keeps running meanwhile (Cyrus locks per user).
import { connect } from 'node:net';
import { execa } from 'execa';
import type { Logger, SeedProgress, SeedReport } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from '../cyrus/install.js';
import { isDelayedDeleted, isPlausibleMailbox, summarizeWithSizes } from '../cyrus/mailboxes.js';


export interface SeedTarget {
  ip: string;
  port: number;
}

/**
 * Users per sync_client -u: at most 50 (one process per batch), and small enough that a seed reports progress some
 * twenty times (a store of 20 users goes user by user).
 */
export const batchSize = (users: number) => Math.max(1, Math.min(50, Math.ceil(users / 20)));

/** What a seed will copy, per unit of work (a user, or a shared mailbox): mailboxes, messages, bytes. */
export interface SeedUnit {
  mailboxes: number;
  messages: number;
  bytes: number;
}

/** Sums the master's summary per user and per shared mailbox (delayed-deleted ones are not copied). */
export function seedUnits(mailboxes: readonly { name: string; messages: number; bytes: number }[]): Map<string, SeedUnit> {
  const out = new Map<string, SeedUnit>();
  for (const m of mailboxes) {
    if (isDelayedDeleted(m.name)) continue;
    // a user and a shared mailbox of the same name are two units
    const user = userOf(m.name);
    const key = user === undefined ? `mailbox:${m.name}` : `user:${user}`;
    const u = out.get(key) ?? { mailboxes: 0, messages: 0, bytes: 0 };
    u.mailboxes++;
    u.messages += Number.isFinite(m.messages) ? m.messages : 0;
    u.bytes += m.bytes;
    out.set(key, u);
  }
  return out;
}

/** `user.bob^smith.Sent` → user `bob.smith`; undefined for a shared or deleted mailbox. */
export function userOf(internal: string): string | undefined {
  if (!internal.startsWith('user.')) return undefined;
  const id = internal.slice(5).split('.')[0]!;
  return id ? id.replaceAll('^', '.') : undefined;
}

/** Users and shared mailboxes to copy; delayed-deleted mailboxes (DELETED.…) are not copied. */
export function seedWork(mailboxes: readonly string[]): { users: string[]; shared: string[] } {
  const users = new Set<string>();
  const shared: string[] = [];
  for (const name of mailboxes) {
    if (isDelayedDeleted(name)) continue;
    const user = userOf(name);
    if (user) users.add(user);
    else shared.push(name);
  }
  return { users: [...users].sort(), shared: shared.sort() };
}

function reachable(target: SeedTarget, timeoutMs = 3000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.ip, port: target.port });
    const done = (why: string | undefined) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(timeoutMs, () => done(`replica ${target.ip}:${target.port} does not answer within ${timeoutMs} ms`));
    socket.on('connect', () => done(undefined));
    socket.on('error', (err) => done(`replica ${target.ip}:${target.port} refuses connections (${err.message})`));
  });
}

async function syncClient(imapdConf: string, target: SeedTarget, mode: '-u' | '-m', names: readonly string[], timeoutMs: number): Promise<string | undefined> {
  const { file, args } = asCyrusTool(cyrusBinary('sync_client'), ['-C', imapdConf, '-S', target.ip, '-o', '-v', mode, ...names]);
  const result = await execa(file, args, { reject: false, timeout: timeoutMs, all: true });
  if (result.exitCode === 0 && !result.timedOut) return undefined;
  const why = result.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${result.exitCode ?? result.signal}`;
  return `sync_client ${mode} ${why}: ${(result.all ?? '').trim().split('\n').slice(-2).join(' | ')}`;
}

/**
 * How long to pause after `bytesDone` bytes in `elapsedMs` so that the average stays at `limit` bytes a second (0
 * for none). The only limit there is: sync_client has none of its own, so a seed is paced between its batches.
 */
export function paceMs(bytesDone: number, elapsedMs: number, limit: number): number {
  if (limit <= 0) return 0;
  return Math.max(0, Math.ceil((bytesDone / limit) * 1000 - elapsedMs));
}

export async function seedReplica(op: string, imapdConf: string, target: SeedTarget, log: Logger, timeoutMs = 600_000, onProgress: (p: SeedProgress) => void = () => undefined, rateLimit = 0): Promise<SeedReport> {
  const started = Date.now();
  const result = (fields: Partial<SeedReport>): SeedReport => ({ op, ok: false, users: 0, mailboxes: 0, messages: 0, error: '', failed: [], ...fields, ms: Date.now() - started, finishedAt: new Date().toISOString() });
  const unreachable = await reachable(target);
  if (unreachable) return result({ error: unreachable });
  let all;
  try {
    all = await summarizeWithSizes(imapdConf);
  } catch (err) {
    return result({ error: `listing the master's mailboxes failed: ${(err as Error).message}` });
  }
  const { users, shared } = seedWork(all.map((m) => m.name).filter(isPlausibleMailbox));
  const messages = all.reduce((a, m) => a + (isDelayedDeleted(m.name) ? 0 : m.messages), 0);
  const units = seedUnits(all);
  const total = [...units.values()].reduce((a, u) => ({ mailboxes: a.mailboxes + u.mailboxes, messages: a.messages + u.messages, bytes: a.bytes + u.bytes }), { mailboxes: 0, messages: 0, bytes: 0 });
  const progress: SeedProgress = {
    op, usersDone: 0, users: users.length, mailboxesDone: 0, mailboxes: total.mailboxes, messagesDone: 0, messages: total.messages, bytesDone: 0, bytes: total.bytes,
    startedAt: new Date(started).toISOString(), updatedAt: new Date().toISOString(),
  };
  const advance = (keys: readonly string[], userCount: number) => {
    for (const k of keys) {
      const u = units.get(k);
      if (!u) continue;
      progress.mailboxesDone = Number(progress.mailboxesDone) + u.mailboxes;
      progress.messagesDone = Number(progress.messagesDone) + u.messages;
      progress.bytesDone = Number(progress.bytesDone) + u.bytes;
    }
    progress.usersDone = Number(progress.usersDone) + userCount;
    progress.updatedAt = new Date().toISOString();
    onProgress({ ...progress });
  };
  const pace = async () => {
    const wait = paceMs(Number(progress.bytesDone), Date.now() - started, rateLimit);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
  onProgress({ ...progress });
  log.info({ users: users.length, shared: shared.length, mailboxes: all.length, messages, bytes: total.bytes }, 'full initial sync to the new replica: starting');
  const failed: string[] = [];
  let lastError = '';
  const batch = batchSize(users.length);
  for (let i = 0; i < users.length; i += batch) {
    const some = users.slice(i, i + batch);
    const error = await syncClient(imapdConf, target, '-u', some, timeoutMs);
    if (error) {
      // the batch failed: each of its users once more on its own, so that one bad user names itself
      log.warn({ err: error, users: some.length }, 'a batch of the initial sync failed: retrying its users one by one');
      for (const user of some) {
        const again = await syncClient(imapdConf, target, '-u', [user], timeoutMs);
        if (again) {
          failed.push(user);
          lastError = again;
        }
      }
    }
    advance(some.map((u) => `user:${u}`), some.length);
    if (i + batch < users.length || shared.length) await pace(); // none after the last batch
  }
  for (const [k, name] of shared.entries()) {
    const error = await syncClient(imapdConf, target, '-m', [name.replaceAll('.', '/').replaceAll('^', '.')], timeoutMs);
    if (error) {
      failed.push(name);
      lastError = error;
    }
    advance([`mailbox:${name}`], 0);
    if (k < shared.length - 1) await pace();
  }
  const out = result({ ok: failed.length === 0, users: users.length, mailboxes: all.length, messages, failed, error: failed.length ? `${failed.length} of ${users.length + shared.length} did not copy; last: ${lastError}` : '' });
  log.info({ ok: out.ok, ms: out.ms, users: out.users, messages, failed: failed.length }, 'full initial sync to the new replica: done');
  return out;
}
