// A full initial sync from a master to a new, empty replica (re-replication after a machine is retired): every user
// with `sync_client -u` in batches, every shared mailbox with `-m`. Measured on Cyrus 3.6: `-u` and `-A` both copy a
// user whole (mailboxes, messages, subscriptions, quota); `-u` per batch is kept because one bad user then fails only
// its batch, which is retried user by user, and the result names exactly who did not copy. The master keeps serving
// and its rolling sync_client keeps running meanwhile (Cyrus locks per user).
import { connect } from 'node:net';
import { execa } from 'execa';
import type { Logger, SeedReport } from '@slotctl/shared';
import { asCyrusTool, cyrusBinary } from '../cyrus/install.js';
import { isDelayedDeleted, isPlausibleMailbox, summarizeAllMailboxes } from '../cyrus/mailboxes.js';


export interface SeedTarget {
  ip: string;
  port: number;
}

const BATCH = 50;

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

export async function seedReplica(op: string, imapdConf: string, target: SeedTarget, log: Logger, timeoutMs = 600_000): Promise<SeedReport> {
  const started = Date.now();
  const result = (fields: Partial<SeedReport>): SeedReport => ({ op, ok: false, users: 0, mailboxes: 0, messages: 0, error: '', failed: [], ...fields, ms: Date.now() - started, finishedAt: new Date().toISOString() });
  const unreachable = await reachable(target);
  if (unreachable) return result({ error: unreachable });
  let all;
  try {
    all = await summarizeAllMailboxes(imapdConf);
  } catch (err) {
    return result({ error: `listing the master's mailboxes failed: ${(err as Error).message}` });
  }
  const { users, shared } = seedWork(all.map((m) => m.name).filter(isPlausibleMailbox));
  const messages = all.reduce((a, m) => a + (isDelayedDeleted(m.name) ? 0 : m.messages), 0);
  log.info({ users: users.length, shared: shared.length, mailboxes: all.length, messages }, 'full initial sync to the new replica: starting');
  const failed: string[] = [];
  let lastError = '';
  for (let i = 0; i < users.length; i += BATCH) {
    const batch = users.slice(i, i + BATCH);
    const error = await syncClient(imapdConf, target, '-u', batch, timeoutMs);
    if (!error) continue;
    // the batch failed: each of its users once more on its own, so that one bad user names itself
    log.warn({ err: error, users: batch.length }, 'a batch of the initial sync failed: retrying its users one by one');
    for (const user of batch) {
      const again = await syncClient(imapdConf, target, '-u', [user], timeoutMs);
      if (again) {
        failed.push(user);
        lastError = again;
      }
    }
  }
  for (const name of shared) {
    const error = await syncClient(imapdConf, target, '-m', [name.replaceAll('.', '/').replaceAll('^', '.')], timeoutMs);
    if (error) {
      failed.push(name);
      lastError = error;
    }
  }
  const out = result({ ok: failed.length === 0, users: users.length, mailboxes: all.length, messages, failed, error: failed.length ? `${failed.length} of ${users.length + shared.length} did not copy; last: ${lastError}` : '' });
  log.info({ ok: out.ok, ms: out.ms, users: out.users, messages, failed: failed.length }, 'full initial sync to the new replica: done');
  return out;
}
