// Cleanup on the coordinator, level-triggered like the operations (called on every orchestrator evaluation): records
// what agents reported, ends cleanups that outlived their timeout, starts what the schedule picks, and raises an
// event when a partition crosses a threshold. A cleanup is a request in the slot's desired state (a `cleanup` slot request).
import { randomUUID } from 'node:crypto';
import { NotFoundError, ValidationError, withContext, type Logger } from '@slotctl/shared';
import { nowIso, type CleanupResultRow, type CleanupSlotRow, type PartitionRow, type SlotRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { CLEANUP_SETTING, readCleanupConfig, type CleanupConfig } from './config.js';
import { FirstTurns } from './first-turns.js';
import { diskLevel, nextTurn, pickCleanups, usedPercent, type DiskLevel } from './schedule.js';

export interface CleanupDeps {
  storage: Storage;
  push: (machines: Iterable<string>) => void;
  connected: () => ReadonlySet<string>;
  log: Logger;
}

/** Grace beyond the timeout for the agent's own report of a killed run. */
const REPORT_GRACE_MS = 60_000;

export class CleanupScheduler {
  private readonly levels = new Map<string, DiskLevel>();
  /** Slots with a partition over the critical threshold (looked at on every check). */
  private readonly critical = new Set<string>();
  /** Slots whose reported partitions changed level since the last check: looked at (and an event raised) then. */
  private readonly dirty = new Set<string>();
  private lastConfig: CleanupConfig | undefined;
  private lastCheck = 0;
  /** First turns of slots never cleaned, counted from when this coordinator first saw them. */
  private readonly firstTurns = new FirstTurns();

  constructor(private readonly deps: CleanupDeps) {}

  config(): CleanupConfig {
    return readCleanupConfig(this.deps.storage.settings.get(CLEANUP_SETTING));
  }

  /** At most every 500 ms: the schedule is in minutes, results in seconds. */
  check(now = Date.now()): void {
    if (now - this.lastCheck < 500) return;
    this.lastCheck = now;
    const { storage } = this.deps;
    const config = this.config();
    // not every slot, twice a second: only those that can change anything
    if (config !== this.lastConfig) {
      // new thresholds: every slot seen is looked at again once
      this.lastConfig = config;
      for (const slot of this.firstTurns.seenSlots()) this.dirty.add(slot);
    }
    const nowAt = new Date(now).toISOString();
    const candidates = { now: nowAt, names: [...new Set([...this.critical, ...this.dirty, ...this.firstTurns.dueBy(nowAt, config)])] };
    this.dirty.clear();
    const slots = storage.cleanup.candidates(candidates);
    const touched = new Set<string>();
    for (const s of slots) {
      if (s.cleanupOp) this.settle(s, config, now, touched);
      this.watchDisks(s, config);
    }
    const fresh = (touched.size ? storage.cleanup.candidates(candidates) : slots).map((s) => (s.cleanupNextAt ? this.forgetFirstTurn(s) : { ...s, cleanupNextAt: this.nextAt(s, config, now) }));
    // the run history matters only to a slot with a critical partition (at most one cleanup an hour for it): it is
    // read then, not on every evaluation
    const lastEnded = new Map<string, number>();
    if (fresh.some((s) => s.partitions.some((p) => diskLevel(p, config) === 'critical'))) {
      for (const run of storage.cleanup.runs({ limit: 10_000 })) if (!lastEnded.has(run.slot)) lastEnded.set(run.slot, Date.parse(run.finishedAt));
    }
    // nothing due (the usual case): no need to read every machine
    if (!fresh.some((s) => !s.cleanupOp && (s.cleanupRequested || s.cleanupNextAt <= nowAt || this.critical.has(s.name)))) {
      if (touched.size) this.deps.push(touched);
      return;
    }
    const picks = pickCleanups({ now, config, machines: storage.machines.list(), connected: this.deps.connected(), slots: fresh, busyStores: storage.operations.busyStores(), lastEnded });
    for (const pick of picks) {
      const slot = fresh.find((s) => s.name === pick.slot)!;
      const op = `cl-${randomUUID().slice(0, 8)}`;
      storage.cleanup.start(slot.name, op, `cleanup of ${slot.name}: ${pick.reason}`);
      withContext(this.deps.log, { slot: slot.name, store: slot.store, op, machine: slot.machine }).info({ reason: pick.reason }, 'cleanup started');
      touched.add(slot.machine);
    }
    if (touched.size) this.deps.push(touched);
  }

  /**
   * Agents reported these slots (committed): a slot seen for the first time has its first turn counted from now,
   * and one whose partitions changed level is looked at on the next check (which raises the event).
   */
  noteReports(reports: readonly { slot: string; partitions?: readonly PartitionRow[] | undefined }[], now = Date.now()): void {
    const config = this.config();
    for (const r of reports) {
      this.firstTurns.see(r.slot, now, config);
      if (r.partitions?.some((p) => diskLevel(p, config) !== (this.levels.get(`${r.slot}:${p.role}`) ?? 'ok'))) this.dirty.add(r.slot);
    }
  }

  /** `slotctl cleanup run`: asks for a cleanup of a slot or of every slot of a machine (a running one is not asked again). */
  request(input: { slot?: string | undefined; machine?: string | undefined }): { slots: string[]; problems: string[] } {
    const { storage } = this.deps;
    if (!input.slot === !input.machine) throw new ValidationError('name a slot (--slot) or a machine (--machine)', { hint: 'e.g. slotctl cleanup run --slot s01-m1' });
    let slots: SlotRow[];
    if (input.slot) {
      const slot = storage.slots.get(input.slot);
      if (!slot) throw new NotFoundError(`slot "${input.slot}" is not in the cluster`, { hint: 'list slots with `slotctl slot list`' });
      slots = [slot];
    } else {
      if (!storage.machines.get(input.machine!)) throw new NotFoundError(`machine "${input.machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
      slots = storage.slots.ofMachine(input.machine!);
    }
    const asked: string[] = [];
    const problems: string[] = [];
    for (const slot of slots) {
      if (slot.requests.cleanup) problems.push(`${slot.name}: a cleanup runs already (${slot.requests.cleanup.id}, since ${slot.cleanupStartedAt}); not asked again`);
      else {
        storage.cleanup.request(slot.name, 'operator');
        asked.push(slot.name);
      }
    }
    return { slots: asked, problems };
  }

  /** When the slot's next nightly turn is: stored after each run, else counted from when it was first seen. */
  nextAt(s: Pick<SlotRow, 'name' | 'cleanupNextAt'>, config = this.config(), now = Date.now()): string {
    return s.cleanupNextAt || this.firstTurns.at(s.name, now, config);
  }

  /** A slot cleaned once has its next turn stored: its first turn is no longer watched. */
  private forgetFirstTurn<T extends { name: string }>(s: T): T {
    this.firstTurns.forget(s.name);
    return s;
  }

  /** A running cleanup: its agent's result, or a timeout, or its machine gone. */
  private settle(s: CleanupSlotRow, config: CleanupConfig, now: number, touched: Set<string>): void {
    const { storage } = this.deps;
    const result = storage.cleanup.lastResult(s.name);
    const next = new Date(nextTurn(now, config, s.name)).toISOString();
    let ended: CleanupResultRow | undefined;
    let why = '';
    if (result?.op === s.cleanupOp) {
      ended = result;
      why = result.ok
        ? `cyr_expire on ${s.name} done in ${result.ms} ms, ${result.freedBytes} bytes freed`
        : `cyr_expire on ${s.name} failed: ${result.error}${result.tail.length ? ` — last lines: ${result.tail.slice(-3).join(' | ')}` : ''}`;
    } else {
      const started = Date.parse(s.cleanupStartedAt);
      const machine = storage.machines.get(s.machine);
      const gone = machine?.state === 'down' ? `machine ${s.machine} is down` : '';
      if (gone || now - started > config.timeoutMs + REPORT_GRACE_MS) {
        const error = gone ? `${gone}: no result` : `no result from the agent ${Math.round((now - started) / 1000)} s after the start (timeout ${Math.round(config.timeoutMs / 1000)} s)`;
        ended = { op: s.cleanupOp, ok: false, exitCode: -1, startedAt: s.cleanupStartedAt, finishedAt: nowIso(), ms: now - started, freedBytes: 0, error, tail: [] };
        why = `cleanup of ${s.name} ended: ${error}`;
      }
    }
    if (!ended) return;
    // a failure keeps the slot's own last log lines beside cyr_expire's (what Cyrus said around it)
    if (!ended.ok) ended = { ...ended, tail: [...ended.tail, ...(storage.slots.get(s.name)?.recentLog ?? []).slice(-5).map((l) => `slot log: ${l}`)] };
    storage.cleanup.finish(s.name, ended, next, why);
    const log = withContext(this.deps.log, { slot: s.name, store: s.store, op: s.cleanupOp, machine: s.machine });
    if (ended.ok) log.info({ ms: ended.ms, freedBytes: ended.freedBytes }, why);
    else log.warn({ tail: ended.tail.slice(-5) }, why);
    touched.add(s.machine);
  }

  /** One event each time a partition of a slot changes level (ok, warning, critical). */
  private watchDisks(s: CleanupSlotRow, config: CleanupConfig): void {
    if (s.partitions.some((p) => diskLevel(p, config) === 'critical')) this.critical.add(s.name);
    else this.critical.delete(s.name);
    for (const p of s.partitions) {
      const key = `${s.name}:${p.role}`;
      const level = diskLevel(p, config);
      const before = this.levels.get(key) ?? 'ok';
      this.levels.set(key, level);
      if (level === before) continue;
      const u = usedPercent(p);
      this.deps.storage.events.append({
        kind: `disk.${level}`,
        machine: s.machine,
        store: s.store,
        slot: s.name,
        reason: `${p.role} partition ${p.path} of ${s.name} on ${s.machine}: ${u.bytes} % of bytes and ${u.inodes} % of inodes used (warn ${config.warnPct} %, critical ${config.criticalPct} %)${level === 'critical' ? '; its cleanup goes to the front of the queue' : ''}`,
        data: { severity: level === 'ok' ? 'info' : level, usedPercent: u, freeBytes: p.freeBytes, deletedBytes: p.deletedBytes, expungedBytes: p.expungedBytes },
      });
    }
  }
}
