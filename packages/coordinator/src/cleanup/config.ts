// The cluster's cleanup policy: retentions handed to cyr_expire, the nightly window, how many at once per machine,
// the timeout, and the disk thresholds. Declared in the cluster file (`cleanup:`), kept in the settings table.
import { z } from 'zod';
import { parseDuration } from '@slotctl/shared';

const cyrusDuration = z.string().regex(/^\d{1,6}[dhms]?$/, 'a Cyrus duration such as 7d, 12h or 0');
const clock = /^([01]\d|2[0-3]):([0-5]\d)$/;

export const cleanupSchema = z.strictObject({
  /** Expunged messages are kept this long (cyr_expire -X). */
  expunged: cyrusDuration.default('7d'),
  /** Deleted folders are kept this long (-D). */
  deleted: cyrusDuration.default('7d'),
  /** Duplicate-delivery records are kept this long (-E). */
  duplicates: cyrusDuration.default('3d'),
  /** When scheduled cleanups start, UTC, HH:MM-HH:MM (may wrap midnight); each slot at its own jittered minute. */
  window: z.string().refine((w) => w.split('-').length === 2 && w.split('-').every((t) => clock.test(t)), 'a window such as 02:00-05:00 (UTC)').default('02:00-05:00'),
  /** Cleanups at once per machine (slots sharing a disk never run together whatever this says). */
  parallel: z.number().int().min(1).max(16).default(1),
  /** A cyr_expire running longer is killed and reported. */
  timeout: z.string().refine((v) => { try { parseDuration(v); return true; } catch { return false; } }, 'a duration such as 2h').default('2h'),
  /** Partition use (bytes or inodes), in percent, that raises a warning / a critical event. */
  warn: z.number().min(1).max(100).default(80),
  critical: z.number().min(1).max(100).default(90),
});

export type CleanupSpec = z.infer<typeof cleanupSchema>;

export interface CleanupConfig {
  expunged: string;
  deleted: string;
  duplicates: string;
  windowStartMin: number;
  windowEndMin: number;
  parallel: number;
  timeoutMs: number;
  warnPct: number;
  criticalPct: number;
}

export const CLEANUP_SETTING = 'cleanup';

export function toConfig(spec: CleanupSpec): CleanupConfig {
  const [start, end] = spec.window.split('-').map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3))) as [number, number];
  return {
    expunged: spec.expunged,
    deleted: spec.deleted,
    duplicates: spec.duplicates,
    windowStartMin: start,
    windowEndMin: end,
    parallel: spec.parallel,
    timeoutMs: parseDuration(spec.timeout),
    warnPct: spec.warn,
    criticalPct: Math.max(spec.warn, spec.critical),
  };
}

let last: { stored: string | undefined; config: CleanupConfig } | undefined;

/** The stored policy (or the defaults). The last one is kept: it is read for every desired state and every check. */
export function readCleanupConfig(stored: string | undefined): CleanupConfig {
  if (last && last.stored === stored) return last.config;
  const parsed = cleanupSchema.safeParse(stored ? JSON.parse(stored) : {});
  const config = Object.freeze(toConfig(parsed.success ? parsed.data : cleanupSchema.parse({})));
  last = { stored, config };
  return config;
}
