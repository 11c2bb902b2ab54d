// What `slotctl cleanup status` and `slotctl disk status` show: the rows the coordinator computes (its
// cleanup/view.ts) and sends as JSON in the CleanupStatus and DiskStatus replies. Declared here so that slotctl can
// read them without importing coordinator code.

export interface CleanupStatusRow {
  slot: string;
  machine: string;
  store: string;
  role: string;
  disks: string[];
  running: { op: string; since: string; requestedBy: string } | null;
  last: { op: string; startedAt: string; finishedAt: string; ms: number; ok: boolean; exitCode: number; freedBytes: number; error: string; tail: string[] } | null;
  waitingBytes: number;
  requested: string;
  nextAt: string;
}

export interface DiskStatusRow {
  machine: string;
  slot: string;
  role: string;
  path: string;
  totalBytes: number;
  freeBytes: number;
  usedPercent: number;
  inodesUsedPercent: number;
  deletedBytes: number;
  expungedBytes: number;
  level: string;
  measuredAt: string;
  error: string;
}
