// Pure: what `slotctl cleanup status` and `slotctl disk status` show, from database rows.
import type { CleanupRunRow, MachineRow, SlotRow, StoreRow } from '../db/rows.js';
import type { CleanupConfig } from './config.js';
import { diskLevel, slotDisks, usedPercent } from './schedule.js';
import type { CleanupStatusRow, DiskStatusRow } from '@slotctl/shared';

export function cleanupStatus(rows: { slots: readonly SlotRow[]; stores: readonly StoreRow[]; machines: readonly MachineRow[]; runs: readonly CleanupRunRow[] }, machine?: string): CleanupStatusRow[] {
  const stores = new Map(rows.stores.map((s) => [s.name, s]));
  const machines = new Map(rows.machines.map((m) => [m.name, m]));
  const last = new Map<string, CleanupRunRow>();
  for (const r of rows.runs) if (!last.has(r.slot)) last.set(r.slot, r); // newest first
  return rows.slots
    .filter((s) => !machine || s.machine === machine)
    .map((s) => {
      const run = last.get(s.name);
      return {
        slot: s.name,
        machine: s.machine,
        store: s.store,
        role: stores.get(s.store)?.masterSlot === s.name ? 'master' : 'replica',
        disks: slotDisks(s, machines.get(s.machine)),
        running: s.requests.cleanup ? { op: s.requests.cleanup.id, since: s.cleanupStartedAt, requestedBy: s.cleanupRequested || 'schedule' } : null,
        last: run ? { op: run.op, startedAt: run.startedAt, finishedAt: run.finishedAt, ms: run.ms, ok: run.ok, exitCode: run.exitCode, freedBytes: run.freedBytes, error: run.error, tail: run.tail } : null,
        waitingBytes: s.partitions.reduce((a, p) => a + p.deletedBytes + p.expungedBytes, 0),
        requested: s.cleanupRequested,
        nextAt: s.cleanupNextAt,
      };
    });
}

export function diskStatus(slots: readonly SlotRow[], config: CleanupConfig, machine?: string): DiskStatusRow[] {
  return slots
    .filter((s) => !machine || s.machine === machine)
    .flatMap((s) =>
      s.partitions.map((p) => {
        const u = usedPercent(p);
        return {
          machine: s.machine,
          slot: s.name,
          role: p.role,
          path: p.path,
          totalBytes: p.totalBytes,
          freeBytes: p.freeBytes,
          usedPercent: u.bytes,
          inodesUsedPercent: u.inodes,
          deletedBytes: p.deletedBytes,
          expungedBytes: p.expungedBytes,
          level: p.error ? 'unknown' : diskLevel(p, config),
          measuredAt: p.measuredAt,
          error: p.error,
        };
      }),
    );
}
