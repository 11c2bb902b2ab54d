// The tables that hold the cluster's state, as a backend other than the SQLite file (etcd) and an export see them:
// each table's key columns, and the columns that are only a cache of what agents send every second.
//
// `coarse` columns are kept with the row but a change of them alone is not worth a write elsewhere: a machine's
// last heartbeat is written along with the row's next real change (its liveness state) — liveness itself lives in
// the leader's memory; so is a slot's tail of Cyrus log lines, which changes with every login. What is left out entirely (slot_reports: the digest and time of each slot's last report) is
// rebuilt by the next report of every agent.
//
// `measured` does the same inside a column: what an agent measures anew at every report (the age of the oldest
// unreplicated change grows by itself; a partition's exact free space — its use counts by whole percent — and the
// time it was measured) is left out of the
// comparison, so a steady cluster writes nothing. What the backlog names (its mailboxes, files, whether it is
// stalled) still counts: a new leader that fails over a machine which died meanwhile records as at risk what etcd
// last heard, and the mailboxes are what it needs. Everything measured is fresh again from each agent's first
// report to a new leader, which hears them all before it declares anything down.
export interface TableSpec {
  readonly name: string;
  /** The primary key's columns, in order. */
  readonly key: readonly string[];
  readonly coarse?: readonly string[];
  /** The row without its measurements (a copy; the row as stored is untouched). */
  readonly measured?: (row: Row) => Row;
}

/** In the order rows are inserted when a database is rebuilt (a row's parents before it). */
export const STATE_TABLES: readonly TableSpec[] = [
  { name: 'machines', key: ['name'], coarse: ['last_heartbeat'] },
  { name: 'stores', key: ['name'] },
  { name: 'slots', key: ['name'], coarse: ['reported_at', 'recent_log'], measured: withoutMeasurements },
  // a running seed's progress is a measurement (reported every second or so): not worth a write elsewhere by itself
  { name: 'slot_requests', key: ['slot', 'kind'], measured: (row) => (row.kind === 'seed-progress' ? { ...row, result: null } : row) },
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

/**
 * A slot row without the backlog's age and the partitions' exact free space, use and time measured: a partition's
 * use counts by whole percent (a new leader then holds each disk's level — ok, warning, critical — within a point).
 */
function withoutMeasurements(row: Row): Row {
  return { ...row, backlog: strip(row.backlog, (b) => ({ ...b, oldestChangeAgeMs: undefined })), partitions: strip(row.partitions, (list) => (Array.isArray(list) ? list.map((p: Record<string, unknown>) => ({ role: p.role, path: p.path, totalBytes: p.totalBytes, totalInodes: p.totalInodes, usedPercent: percentUsed(p.freeBytes, p.totalBytes), inodesUsedPercent: percentUsed(p.freeInodes, p.totalInodes), error: p.error })) : list)) };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON column, whatever shape an older row has
function strip(value: string | number | null | undefined, fn: (parsed: any) => unknown): string | number | null {
  if (typeof value !== 'string') return value ?? null;
  try {
    return JSON.stringify(fn(JSON.parse(value)));
  } catch {
    return value;
  }
}

function percentUsed(free: unknown, total: unknown): number | null {
  return typeof free === 'number' && typeof total === 'number' && total > 0 ? Math.floor((100 * (total - free)) / total) : null;
}
