// The etcd backend: the leader holds the cluster in an in-memory SQLite database (the same Storage code as the
// file backend, so every query and every "one transaction" stays as it is) and writes each change to etcd, in
// order, conditioned on still leading (writer.ts). Changes are collected as rows (mirror.ts) and written within
// FLUSH_MS — or at once when something is about to leave the coordinator (`durable`): a desired state waits for the
// epoch it carries to be in etcd, a reply to slotctl for the change it reports.
import type { KVClient } from 'etcd3';
import type { Logger } from '@slotctl/shared';
import type { Backend } from '../backend.js';
import { eventsSeqOf, loadRowsYielding } from '../dump.js';
import type { TableRows } from '../tables.js';
import { LATEST_SCHEMA_VERSION } from '../migrations.js';
import { migrate, openMemoryDatabase } from '../open.js';
import { sqliteStorage } from '../sqlite/index.js';
import { EtcdKeys } from './keys.js';
import { finishJournal, readState } from './load.js';
import { RowMirror, type Op } from './mirror.js';
import { EtcdWriter, LeadershipLost } from './writer.js';

/** Changes no one waits for (reports, heartbeats' coarse columns, events) are written at most this often. */
export const FLUSH_MS = 1000;

export interface EtcdBackendOptions {
  kv: KVClient;
  prefix: string;
  /** The leadership term: the leader key's create revision. */
  term: number;
  /** performance.now() until which this coordinator surely leads. */
  leaderUntil: () => number;
  log: Logger;
  flushMs?: number;
  maxOps?: number;
  /** Rows (at this release's schema) for a prefix that holds no cluster yet: `slot-coordinator import`. */
  seed?: { rows: TableRows; eventsSeq: number };
}

export interface EtcdBackend extends Backend {
  /** Called once when a write fails: this coordinator must stop acting as leader. */
  onLost(fn: (err: LeadershipLost) => void): void;
  /** etcd transactions written so far (the benchmark's writes per second). */
  transactions(): number;
}

export async function etcdBackend(o: EtcdBackendOptions): Promise<EtcdBackend> {
  const keys = new EtcdKeys(o.prefix);
  const writer = new EtcdWriter({ kv: o.kv, keys, term: o.term, leaderUntil: o.leaderUntil, log: o.log, maxOps: o.maxOps });
  const started = performance.now();
  const journal = await finishJournal(o.kv, keys, (reqs) => writer.txn(reqs), o.log);
  const loaded = await readState(o.kv, keys);
  const readMs = Math.round(performance.now() - started);
  const db = openMemoryDatabase(loaded.schema || LATEST_SCHEMA_VERSION);
  let initial: Op[] = [];
  if (o.seed && loaded.schema !== 0) {
    db.close();
    throw new Error(`etcd already holds a cluster under ${o.prefix}: nothing to seed`);
  }
  try {
    await loadRowsYielding(db, o.seed?.rows ?? loaded.rows, o.seed?.eventsSeq ?? loaded.eventsSeq);
    if (loaded.schema !== LATEST_SCHEMA_VERSION) migrate(db, loaded.schema || LATEST_SCHEMA_VERSION, LATEST_SCHEMA_VERSION, o.log);
  } catch (err) {
    db.close();
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  const flushMs = o.flushMs ?? FLUSH_MS;
  const mirror = new RowMirror(db, keys, () => {
    timer ??= setTimeout(() => void flush().catch(() => undefined), flushMs);
  });
  if (loaded.schema === LATEST_SCHEMA_VERSION) {
    let n = 0;
    for (const [table, list] of Object.entries(loaded.rows)) {
      for (const row of list) {
        mirror.hold(table, row);
        if (++n % 2000 === 0) await new Promise((resolve) => setImmediate(resolve)); // the leadership lease is kept alive meanwhile
      }
    }
  } else {
    // a new cluster, or rows of an older schema migrated here: written back whole, with the schema they are now in
    initial = [{ key: keys.schema, value: JSON.stringify({ version: LATEST_SCHEMA_VERSION }) }, ...mirror.everything()];
    if (eventsSeqOf(db) > 0) initial.push({ key: keys.eventsSeq, value: String(eventsSeqOf(db)) });
  }
  for (const key of loaded.inParts) writer.inParts.add(key);
  const rows = Object.values(loaded.rows).reduce((n, list) => n + list.length, 0);
  o.log.info({ term: o.term, rows, schema: loaded.schema, revision: loaded.revision, journal, readMs, loadedMs: Math.round(performance.now() - started) - readMs }, 'cluster state read from etcd');

  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    // inside a transaction the rows are not committed yet: once it has ended (transactions are synchronous)
    if (db.inTransaction) return new Promise<void>((resolve) => queueMicrotask(resolve)).then(flush);
    return writer.write(mirror.collect());
  };
  if (initial.length) await writer.write(initial);

  // Group commit: every `durable` until the next change is collected shares it, and it is collected once what is in
  // flight is written. A thousand agents saying hello to a new leader each wait for their desired state to be
  // durable: one etcd transaction each, one after another, became a few.
  let next: Promise<void> | undefined;
  const durableSoon = (): Promise<void> => {
    next ??= writer.idle().then(() => {
      next = undefined;
      return flush();
    });
    return next;
  };

  return {
    storage: sqliteStorage(db),
    describe: `etcd ${o.prefix}`,
    durable: () => {
      if (writer.failed) return Promise.reject(writer.failed);
      if (performance.now() > o.leaderUntil()) return Promise.reject(new LeadershipLost('the leadership lease ran out'));
      return durableSoon();
    },
    close: () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      db.close();
    },
    onLost: (fn) => writer.onFailed(fn),
    transactions: () => writer.transactions,
  };
}

export { LeadershipLost } from './writer.js';
