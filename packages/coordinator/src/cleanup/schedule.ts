// Pure: which slots start a cleanup now, and when each is due next. Rules: a slot is due when an operator asked, when
// its nightly turn came, or (a partition over the critical threshold) at once — those first; it starts only if its
// machine is up with the agent connected, it serves, no operation touches its store, fewer than `parallel` cleanups
// run on its machine, and no running cleanup shares one of its disks (slots whose partitions are on one disk never
// clean together; a machine that declares no disks counts as one disk).
import type { CleanupSlotRow, MachineRow } from '../db/rows.js';
import type { CleanupConfig } from './config.js';

const DAY = 86_400_000;

export interface Pick {
  slot: string;
  reason: string;
}

/** The names of the machine's disks that hold the slot's partitions (the machine itself when none is declared). */
export function slotDisks(slot: { dataPath: string; metaPath: string }, machine: MachineRow | undefined): string[] {
  const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir.replace(/\/$/, '')}/`);
  const disks = (machine?.disks ?? []).filter((d) => under(slot.dataPath, d.path) || under(slot.metaPath, d.path)).map((d) => d.name);
  return disks.length ? disks : ['(whole machine)'];
}

/** A stable minute for the slot inside the window, so that a machine's slots do not all start at once. */
export function jitterMinutes(slot: string, windowMinutes: number): number {
  let h = 2166136261;
  for (const c of slot) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return (h >>> 0) % Math.max(1, windowMinutes);
}

/** The next start of the slot's nightly turn after `now` (UTC). */
export function nextTurn(now: number, config: CleanupConfig, slot: string): number {
  const length = (config.windowEndMin - config.windowStartMin + 1440) % 1440 || 1440;
  const minute = (config.windowStartMin + jitterMinutes(slot, length)) % 1440;
  const dayStart = Math.floor(now / DAY) * DAY;
  let at = dayStart + minute * 60_000;
  if (at <= now) at += DAY;
  return at;
}

export function usedPercent(p: { totalBytes: number; freeBytes: number; totalInodes: number; freeInodes: number }): { bytes: number; inodes: number } {
  const pct = (total: number, free: number) => (total > 0 ? Math.round(((total - free) / total) * 1000) / 10 : 0);
  return { bytes: pct(p.totalBytes, p.freeBytes), inodes: pct(p.totalInodes, p.freeInodes) };
}

export type DiskLevel = 'ok' | 'warning' | 'critical';

export function diskLevel(p: { totalBytes: number; freeBytes: number; totalInodes: number; freeInodes: number; error: string }, config: CleanupConfig): DiskLevel {
  if (p.error) return 'ok';
  const u = usedPercent(p);
  const worst = Math.max(u.bytes, u.inodes);
  return worst >= config.criticalPct ? 'critical' : worst >= config.warnPct ? 'warning' : 'ok';
}

export interface ScheduleInput {
  now: number;
  config: CleanupConfig;
  machines: readonly MachineRow[];
  connected: ReadonlySet<string>;
  slots: readonly CleanupSlotRow[];
  /** Stores an operation is touching. */
  busyStores: ReadonlySet<string>;
  /** When each slot's last cleanup ended (ms), for the critical-disk rule. */
  lastEnded: ReadonlyMap<string, number>;
}

export function pickCleanups(v: ScheduleInput): Pick[] {
  const machines = new Map(v.machines.map((m) => [m.name, m]));
  const running = new Map<string, { count: number; disks: Set<string> }>();
  for (const s of v.slots) {
    if (!s.cleanupOp) continue;
    const r = running.get(s.machine) ?? { count: 0, disks: new Set<string>() };
    r.count++;
    for (const d of slotDisks(s, machines.get(s.machine))) r.disks.add(d);
    running.set(s.machine, r);
  }
  const due: { slot: CleanupSlotRow; rank: number; reason: string }[] = [];
  for (const s of v.slots) {
    if (s.cleanupOp) continue;
    const full = s.partitions.some((p) => diskLevel(p, v.config) === 'critical');
    const lastEnded = v.lastEnded.get(s.name) ?? 0;
    if (s.cleanupRequested) due.push({ slot: s, rank: full ? 0 : 1, reason: `requested by ${s.cleanupRequested}` });
    else if (full && v.now - lastEnded > 3_600_000) {
      const p = s.partitions.find((x) => diskLevel(x, v.config) === 'critical')!;
      due.push({ slot: s, rank: 0, reason: `its ${p.role} partition ${p.path} is ${Math.max(...Object.values(usedPercent(p)))} % full: cleaned first` });
    } else if (s.cleanupNextAt && Date.parse(s.cleanupNextAt) <= v.now) due.push({ slot: s, rank: 2, reason: `its nightly turn (${s.cleanupNextAt.slice(11, 16)} UTC)` });
  }
  due.sort((a, b) => a.rank - b.rank || (a.slot.cleanupNextAt < b.slot.cleanupNextAt ? -1 : 1) || (a.slot.name < b.slot.name ? -1 : 1));
  const out: Pick[] = [];
  for (const { slot, reason } of due) {
    const m = machines.get(slot.machine);
    if (!m || m.state !== 'up' || !v.connected.has(m.name) || m.retiredAt) continue;
    if (slot.observedState !== 'SERVING') continue;
    if (v.busyStores.has(slot.store)) continue;
    const r = running.get(slot.machine) ?? { count: 0, disks: new Set<string>() };
    if (r.count >= v.config.parallel) continue;
    const disks = slotDisks(slot, m);
    if (disks.some((d) => r.disks.has(d))) continue;
    r.count++;
    for (const d of disks) r.disks.add(d);
    running.set(slot.machine, r);
    out.push({ slot: slot.name, reason });
  }
  return out;
}
