// The tables that hold the cluster's state, as a backend other than the SQLite file (etcd) and an export see them:
// each table's key columns, and the columns that are only a cache of what agents send every second.
//
// `coarse` columns are kept with the row but a change of them alone is not worth a write elsewhere: a machine's
// last heartbeat is written along with the row's next real change (its liveness state) — liveness itself lives in
// the leader's memory. What is left out entirely (slot_reports: the digest and time of each slot's last report) is
// rebuilt by the next report of every agent.
export interface TableSpec {
  readonly name: string;
  /** The primary key's columns, in order. */
  readonly key: readonly string[];
  readonly coarse?: readonly string[];
}

/** In the order rows are inserted when a database is rebuilt (a row's parents before it). */
export const STATE_TABLES: readonly TableSpec[] = [
  { name: 'machines', key: ['name'], coarse: ['last_heartbeat'] },
  { name: 'stores', key: ['name'] },
  { name: 'slots', key: ['name'], coarse: ['reported_at'] },
  { name: 'slot_requests', key: ['slot', 'kind'] },
  { name: 'operations', key: ['id'] },
  { name: 'at_risk', key: ['id'] },
  { name: 'retired_slots', key: ['id'] },
  { name: 'cleanup_runs', key: ['id'] },
  { name: 'settings', key: ['key'] },
  { name: 'events', key: ['id'] },
];

export type Row = Record<string, string | number | null>;

/** Every row of every state table, by table, in key order (an export, or what an etcd backend holds). */
export type TableRows = Record<string, Row[]>;
