// A new leader's first read: the whole cluster state from etcd into its in-memory database. A journal left by the
// previous leader (a large change committed but not fully applied, see writer.ts) is applied first; then every key
// is read at one revision, page by page (a cluster of 1,000 machines is more than one gRPC message), each table
// beside the others: the read is a new leader's time without a leader, and sequential pages of 500 were 4.7 s of it
// at 1,000 machines (40,000 rows) on a busy host.
import type { IKeyValue, KVClient } from 'etcd3';
import { NewerSchemaError, type Logger } from '@slotctl/shared';
import type { DumpError } from '../dump.js';
import { LATEST_SCHEMA_VERSION } from '../migrations.js';
import { STATE_TABLES, type Row, type TableRows } from '../tables.js';
import { prefixEnd, type EtcdKeys } from './keys.js';
import { applyInBatches, decodeOps, deletePrefix, PARTS_FIELD, toRequest } from './writer.js';

const PAGE = 2000;

export interface Loaded {
  /** The schema the rows were stored in (0: nothing stored yet, a new cluster). */
  schema: number;
  rows: TableRows;
  eventsSeq: number;
  /** Row keys whose value is stored in parts. */
  inParts: string[];
  revision: string;
}

/** Every key under `from` at one revision (`at`, else the first page's). */
export async function rangeAll(kv: KVClient, from: string | Buffer, end: Buffer, timeoutMs = 5000, at?: string): Promise<{ kvs: IKeyValue[]; revision: string }> {
  const kvs: IKeyValue[] = [];
  let key = Buffer.from(from);
  let revision: string | undefined = at;
  for (;;) {
    const res = await kv.range({ key, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) }, { deadline: Date.now() + timeoutMs });
    revision ??= res.header.revision;
    kvs.push(...res.kvs);
    if (!res.more || res.kvs.length === 0) return { kvs, revision };
    key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
  }
}

/**
 * Applies a committed journal (as the new leader: `txn` is conditioned on its own leadership) and deletes it and
 * any parts of one never committed. Returns how many keys it wrote.
 */
export async function finishJournal(kv: KVClient, keys: EtcdKeys, txn: (ops: ReturnType<typeof toRequest>[]) => Promise<void>, log: Logger): Promise<number> {
  const { kvs } = await rangeAll(kv, keys.journal, Buffer.from(keys.journal.slice(0, -1) + '0'));
  if (kvs.length === 0) return 0;
  const ready = kvs.find((k) => k.key.toString() === keys.journalReady);
  let applied = 0;
  if (ready) {
    const { id, parts } = JSON.parse(ready.value.toString()) as { id: string; parts: number };
    const ops = [];
    for (let n = 0; n < parts; n++) {
      const part = kvs.find((k) => k.key.toString() === keys.journalPart(id, n));
      if (!part) throw new Error(`etcd journal ${id} lacks its part ${n}: the etcd data is damaged`);
      ops.push(...decodeOps(part.value.toString()));
    }
    log.warn({ journal: id, ops: ops.length }, 'the previous leader left a committed change half applied: applying it again');
    await applyInBatches(ops, (batch) => txn(batch.map(toRequest)), 100, 1_000_000);
    applied = ops.length;
  }
  await txn([deletePrefix(keys.journal)]);
  return applied;
}

/** The cluster state as stored in etcd. */
export async function readState(kv: KVClient, keys: EtcdKeys): Promise<Loaded> {
  const root = keys.prefix.replace(/\/+$/, '') + '/';
  // the revision first, then every table's keys and the rest at that revision, side by side
  const head = await kv.range({ key: Buffer.from(root), range_end: prefixEnd(root), count_only: true }, { deadline: Date.now() + 5000 });
  const revision = head.header.revision;
  // the key space cut at every table's prefix: each table a span of its own, the gaps between (other keys, and a
  // table this build does not know, refused below) spans too, so nothing under the prefix is missed
  const cuts = STATE_TABLES.map((t) => `${keys.rows}${t.name}/`).sort();
  const spans: [Buffer, Buffer][] = [];
  let from: Buffer = Buffer.from(root);
  for (const table of cuts) {
    spans.push([from, Buffer.from(table)], [Buffer.from(table), prefixEnd(table)]);
    from = prefixEnd(table);
  }
  spans.push([from, prefixEnd(root)]);
  const read = await Promise.all(spans.map(([start, end]) => rangeAll(kv, start, end, 5000, revision)));
  const kvs = read.flatMap((r) => r.kvs);
  const rows: TableRows = Object.fromEntries(STATE_TABLES.map((t) => [t.name, [] as Row[]]));
  const parts = new Map<string, Buffer[]>();
  const inParts: string[] = [];
  let schema = 0;
  let eventsSeq = 0;
  for (const { key: k, value } of kvs) {
    const key = k.toString();
    if (key === keys.schema) schema = (JSON.parse(value.toString()) as { version: number }).version;
    else if (key === keys.eventsSeq) eventsSeq = Number(value.toString());
    else if (key.startsWith(keys.parts)) {
      const rowKey = keys.rows + key.slice(keys.parts.length).replace(/\/\d{6}$/, '');
      (parts.get(rowKey) ?? parts.set(rowKey, []).get(rowKey)!).push(value);
    }
  }
  for (const { key: k, value } of kvs) {
    const key = k.toString();
    const table = keys.tableOf(key);
    if (!table) continue;
    if (!rows[table]) throw new Error(`etcd key ${key}: unknown table "${table}" (written by a newer slot-coordinator?)`);
    let row = JSON.parse(value.toString()) as Row & { [PARTS_FIELD]?: number };
    const n = row[PARTS_FIELD];
    if (typeof n === 'number') {
      const got = parts.get(key) ?? [];
      if (got.length !== n) throw new Error(`etcd key ${key} is stored in ${n} parts but ${got.length} are there: the etcd data is damaged`);
      row = JSON.parse(Buffer.concat(got).toString()) as Row;
      inParts.push(key);
    }
    rows[table]!.push(row);
  }
  if (schema > LATEST_SCHEMA_VERSION) {
    throw new NewerSchemaError(`the cluster in etcd (${keys.prefix}) has schema version ${schema}, newer than this slot-coordinator understands (${LATEST_SCHEMA_VERSION})`, {
      hint: 'run the slot-coordinator release that wrote it (or a newer one) on every coordinator',
    });
  }
  return { schema, rows, eventsSeq, inParts, revision };
}

export type { DumpError };
