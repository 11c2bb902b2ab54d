// Where the etcd backend keeps a cluster, under one prefix (--etcd-prefix, /slotctl by default):
//
//   PREFIX/leader                     the leader coordinator (id, address), attached to its etcd lease
//   PREFIX/schema                     {"version": N}: the schema the rows are in
//   PREFIX/rows/TABLE/KEY[/KEY2]      one row as JSON (integer keys zero-padded, so etcdctl lists them in order)
//   PREFIX/parts/ROWKEY/N             the parts of a row too large for one etcd value
//   PREFIX/meta/events-seq            the highest event id ever given, once old events were deleted
//   PREFIX/meta/writer                {"term", "seq"} of the leader's last transaction (orders them: writer.ts)
//   PREFIX/journal/ready              a committed change too large for one etcd transaction, not yet fully applied
//   PREFIX/journal/ID/N               its parts
import type { TableSpec } from '../tables.js';

export class EtcdKeys {
  readonly leader: string;
  readonly schema: string;
  readonly rows: string;
  readonly eventsSeq: string;
  readonly writer: string;
  readonly journalReady: string;
  readonly journal: string;
  readonly parts: string;

  constructor(readonly prefix: string) {
    const p = prefix.replace(/\/+$/, '');
    this.leader = `${p}/leader`;
    this.schema = `${p}/schema`;
    this.rows = `${p}/rows/`;
    this.eventsSeq = `${p}/meta/events-seq`;
    this.writer = `${p}/meta/writer`;
    this.journalReady = `${p}/journal/ready`;
    this.journal = `${p}/journal/`;
    this.parts = `${p}/parts/`;
  }

  row(table: TableSpec, key: readonly unknown[]): string {
    return `${this.rows}${table.name}/${key.map(part).join('/')}`;
  }

  /** The table a row key belongs to (undefined: not a row key). */
  tableOf(key: string): string | undefined {
    if (!key.startsWith(this.rows)) return undefined;
    const rest = key.slice(this.rows.length);
    const slash = rest.indexOf('/');
    return slash > 0 ? rest.slice(0, slash) : undefined;
  }

  /** The prefix of a row's parts (see EtcdWriter). */
  partsOf(rowKey: string): string {
    return `${this.parts}${rowKey.slice(this.rows.length)}/`;
  }

  part(rowKey: string, n: number): string {
    return `${this.partsOf(rowKey)}${String(n).padStart(6, '0')}`;
  }

  journalPart(id: string, n: number): string {
    return `${this.journal}${id}/${String(n).padStart(6, '0')}`;
  }
}

function part(value: unknown): string {
  if (typeof value === 'number') return String(value).padStart(12, '0');
  return encodeURIComponent(String(value));
}

/** The end of the range of keys starting with `prefix` (etcd's range_end). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]!++;
      return end;
    }
  }
  return Buffer.from([0]);
}
