// Slots in SQLite: what their agents report, what an operator or an operation holds them to, and the rows the
// desired state is built from.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { replicationStallEvent } from '../change-events.js';
import { nowIso, type BacklogRow, type PlacedSlotRow, type RetiredSlotRow, type SlotReportInput, type SlotRow } from '../rows.js';
import type { SlotStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { SLOT_REQUESTS, toRequests, toRetiredSlot, toSlot, type RawRetiredSlot, type RawSlot } from './raw.js';
import type { SqliteStores } from './stores.js';

/** A slot row with the time of its last report (kept apart: see saveReports). */
const SLOT_SELECT = `SELECT s.*, r.reported_at AS seen_at, ${SLOT_REQUESTS('s.name')} AS requests FROM slots s LEFT JOIN slot_reports r ON r.name = s.name`;

/** What a report would write into its slot row, as a short digest (each value with its kind and length). */
function reportDigest(row: Record<string, string | number | null>): string {
  const hash = createHash('sha256');
  for (const v of Object.values(row)) {
    const text = v === null ? '' : String(v);
    hash.update(`${v === null ? 'x' : typeof v === 'number' ? 'n' : 's'}${text.length}:`).update(text);
  }
  return hash.digest('base64url').slice(0, 22);
}

/** A report as the columns it writes: results and partitions the agent did not send (null) keep what is stored. */
function reportColumns(report: SlotReportInput) {
  return {
    state: report.state,
    role: report.role,
    epochApplied: report.epochApplied,
    backlog: JSON.stringify(report.backlog),
    lastError: report.lastError,
    pid: report.pid,
    stateReason: report.stateReason,
    crashes: report.crashes,
    recentLog: JSON.stringify(report.recentLog),
    syncConfirmedEpoch: report.syncConfirmedEpoch,
    quarantine: report.quarantine ? JSON.stringify(report.quarantine) : null,
    recoverListening: report.recoverListening,
    results: Object.keys(report.results).length ? JSON.stringify(report.results) : null,
    partitions: report.partitions?.length ? JSON.stringify(report.partitions) : null,
  };
}

export class SqliteSlots implements SlotStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents, private readonly stores: SqliteStores) {
    this.stmt = {
      all: db.prepare(`${SLOT_SELECT} ORDER BY s.name`),
      one: db.prepare(`${SLOT_SELECT} WHERE s.name = ?`),
      ofMachine: db.prepare(`${SLOT_SELECT} WHERE s.machine = ? ORDER BY s.name`),
      placed: db.prepare(
        `SELECT s.name, s.store, s.machine, s.ip, s.data_path AS dataPath, s.meta_path AS metaPath,
                st.service_ip AS serviceIp, st.master_slot AS masterSlot, st.epoch, p.name AS peerSlot, p.ip AS peerIp, p.machine AS peerMachine, pm.address AS peerAddress, s.admin_stopped AS adminStopped, s.start_generation AS startGeneration,
                s.op_hold AS opHold, s.recovery_hold AS recoveryHold, ${SLOT_REQUESTS('s.name', " AND q.id <> ''")} AS requests,
                t.ip AS recoverTargetIp, t.machine AS recoverTargetMachine, mv.ip AS moveTargetIp
         FROM slots s JOIN stores st ON st.name = s.store
         LEFT JOIN slots p ON p.name = CASE WHEN s.name = st.master_slot THEN st.replica_slot ELSE st.master_slot END
         LEFT JOIN slots mv ON s.name = st.master_slot AND mv.store = s.store AND mv.name <> st.master_slot AND mv.name <> st.replica_slot
         LEFT JOIN machines pm ON pm.name = p.machine
         LEFT JOIN slot_requests rp ON rp.slot = s.name AND rp.kind = 'recover-push' AND rp.id <> ''
         LEFT JOIN slots t ON t.name = json_extract(rp.params, '$.targetSlot')
         WHERE s.machine = ? ORDER BY s.name`,
      ),
      report: db.prepare(
        `UPDATE slots SET observed_state = @state, observed_role = @role, epoch_applied = @epochApplied,
           backlog = @backlog, last_error = @lastError, reported_at = @at, pid = @pid, state_reason = @stateReason,
           crashes = @crashes, recent_log = @recentLog,
           sync_confirmed_epoch = MAX(sync_confirmed_epoch, @syncConfirmedEpoch),
           quarantine = CASE WHEN @quarantine IS NULL THEN quarantine ELSE @quarantine END,
           recover_listening = @recoverListening,
           partitions = CASE WHEN @partitions IS NULL THEN partitions ELSE @partitions END
         WHERE name = @slot AND machine = @machine`,
      ),
      backlog: db.prepare('SELECT backlog, store FROM slots WHERE name = ? AND machine = ?'),
      result: db.prepare(
        `INSERT INTO slot_requests (slot, kind, result) VALUES (?, ?, ?)
         ON CONFLICT(slot, kind) DO UPDATE SET result = excluded.result`,
      ),
      reportUnchanged: db.prepare('UPDATE slot_reports SET reported_at = ? WHERE name = ? AND machine = ? AND digest = ?'),
      reportWritten: db.prepare(
        `INSERT INTO slot_reports (name, machine, reported_at, digest) VALUES (@slot, @machine, @at, @digest)
         ON CONFLICT(name) DO UPDATE SET machine = excluded.machine, reported_at = excluded.reported_at, digest = excluded.digest`,
      ),
      setStopped: db.prepare('UPDATE slots SET admin_stopped = ?, start_generation = start_generation + ? WHERE name = ?'),
      setOpHold: db.prepare('UPDATE slots SET op_hold = ? WHERE name = ?'),
      setRecoveryHold: db.prepare('UPDATE slots SET recovery_hold = ? WHERE name = ?'),
      setSeeding: db.prepare('UPDATE slots SET seeding = ? WHERE name = ?'),
      retired: db.prepare('SELECT * FROM retired_slots ORDER BY id'),
      retiredOfMachine: db.prepare('SELECT * FROM retired_slots WHERE machine = ? ORDER BY id'),
    };
  }

  list(): SlotRow[] {
    return (this.stmt.all.all() as RawSlot[]).map(toSlot);
  }

  get(name: string): SlotRow | undefined {
    const raw = this.stmt.one.get(name) as RawSlot | undefined;
    return raw && toSlot(raw);
  }

  ofMachine(machine: string): SlotRow[] {
    return (this.stmt.ofMachine.all(machine) as RawSlot[]).map(toSlot);
  }

  placedOfMachine(machine: string): PlacedSlotRow[] {
    return (this.stmt.placed.all(machine) as (Omit<PlacedSlotRow, 'requests'> & { requests: string })[]).map((row) => ({ ...row, requests: toRequests(row.requests).requests }));
  }

  /**
   * A slot row carries its reports (kilobytes of log lines and partitions): rewriting 18 of them for every report of
   * every agent made the WAL and its checkpoints the coordinator's main work, and after a restart every agent's
   * hello says what the rows already hold. So a report identical to the one stored (same digest, same machine) only
   * moves its time in the narrow slot_reports table, and the slot row is not even read; one that differs rewrites it.
   */
  saveReports(machine: string, reports: readonly SlotReportInput[]): string[] {
    const at = nowIso();
    const ignored: string[] = [];
    this.db.transaction(() => {
      for (const report of reports) {
        const row = reportColumns(report);
        const digest = reportDigest(row);
        // the same as last time, from this machine: one narrow row moves its time, the slot row is not read
        if (this.stmt.reportUnchanged.run(at, report.slot, machine, digest).changes === 1) continue;
        const before = this.stmt.backlog.get(report.slot, machine) as { backlog: string; store: string } | undefined;
        if (!before) {
          ignored.push(report.slot);
          continue;
        }
        const { results, ...columns } = row;
        this.stmt.report.run({ ...columns, slot: report.slot, machine, at });
        if (results !== null) for (const [kind, result] of Object.entries(report.results)) this.stmt.result.run(report.slot, kind, JSON.stringify(result));
        this.stmt.reportWritten.run({ slot: report.slot, machine, at, digest });
        const event = replicationStallEvent((JSON.parse(before.backlog) as Partial<BacklogRow>).stalled === true, report.backlog);
        if (event) this.events.append({ ...event, machine, store: before.store, slot: report.slot, epoch: this.stores.get(before.store)?.epoch }, at);
      }
    })();
    return ignored;
  }

  setStopped(name: string, stopped: boolean, reason: string): void {
    this.db.transaction(() => {
      const slot = this.get(name);
      if (!slot) return;
      this.stmt.setStopped.run(stopped ? 1 : 0, stopped ? 0 : 1, name);
      const store = this.stores.get(slot.store);
      this.events.append({ kind: stopped ? 'slot.stop-requested' : 'slot.start-requested', machine: slot.machine, store: slot.store, slot: name, epoch: store?.epoch, reason });
    })();
  }

  setOpHold(slot: string, op: string): void {
    this.stmt.setOpHold.run(op, slot);
  }

  setRecoveryHold(slot: string, hold: string): void {
    this.stmt.setRecoveryHold.run(hold, slot);
  }

  setSeeding(slot: string, op: string): void {
    this.stmt.setSeeding.run(op, slot);
  }

  retired(machine?: string): RetiredSlotRow[] {
    const rows = (machine ? this.stmt.retiredOfMachine.all(machine) : this.stmt.retired.all()) as RawRetiredSlot[];
    return rows.map(toRetiredSlot);
  }
}
