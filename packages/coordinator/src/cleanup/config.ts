// The cluster's cleanup policy: retentions handed to cyr_expire, the nightly window, how many at once per machine,
// the timeout, and the disk thresholds. Declared in the cluster file (`cleanup:`), kept in the settings table.
import { parseDuration } from '@slotctl/shared';
import { cleanupSchema, type CleanupSpec } from '@slotctl/shared/cluster-spec';

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
