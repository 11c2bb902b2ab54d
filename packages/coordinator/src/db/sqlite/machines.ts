// Machines in SQLite: their liveness state, heartbeats, drain and retirement, and the rows cluster apply declares.
import type Database from 'better-sqlite3';
import { nowIso, type MachineInput, type MachineRow, type MachineState } from '../rows.js';
import type { MachineStorage } from '../storage.js';
import type { SqliteEvents } from './events.js';
import { toMachine, type RawMachine } from './raw.js';

export class SqliteMachines implements MachineStorage {
  private readonly stmt;

  constructor(private readonly db: Database.Database, private readonly events: SqliteEvents) {
    this.stmt = {
      all: db.prepare('SELECT * FROM machines ORDER BY name'),
      one: db.prepare('SELECT * FROM machines WHERE name = ?'),
      setState: db.prepare('UPDATE machines SET state = ?, state_since = ? WHERE name = ?'),
      heartbeat: db.prepare('UPDATE machines SET last_heartbeat = ? WHERE name = ?'),
      agentVersion: db.prepare('UPDATE machines SET agent_version = ? WHERE name = ?'),
      setDrained: db.prepare('UPDATE machines SET drained = ? WHERE name = ?'),
      retire: db.prepare('UPDATE machines SET retired_at = ?, drained = 1 WHERE name = ?'),
      // the orchestrator's failover check runs many times a second: it reads only this
      mastersDownOrSuspect: db.prepare(
        `SELECT m.name AS machine, m.state FROM machines m
         WHERE m.state IN ('down', 'suspect')
           AND EXISTS (SELECT 1 FROM slots s JOIN stores st ON st.master_slot = s.name WHERE s.machine = m.name)
         ORDER BY m.name`,
      ),
      partnersOf: db.prepare(
        `SELECT DISTINCT p.machine FROM slots s JOIN slots p ON p.store = s.store AND p.machine <> s.machine WHERE s.machine = ? ORDER BY p.machine`,
      ),
      insert: db.prepare(
        "INSERT INTO machines (name, address, disks, slot_capacity, rack, slot_ips, state, state_since, created_at) VALUES (?, ?, ?, ?, ?, ?, 'unknown', ?, ?)",
      ),
      update: db.prepare('UPDATE machines SET address = ?, disks = ?, slot_capacity = ?, rack = ?, slot_ips = ? WHERE name = ?'),
      delete: db.prepare('DELETE FROM machines WHERE name = ?'),
    };
  }

  list(): MachineRow[] {
    return (this.stmt.all.all() as RawMachine[]).map(toMachine);
  }

  get(name: string): MachineRow | undefined {
    const raw = this.stmt.one.get(name) as RawMachine | undefined;
    return raw && toMachine(raw);
  }

  setState(name: string, state: MachineState, reason: string, data?: unknown): void {
    const at = nowIso();
    this.db.transaction(() => {
      const before = this.get(name);
      if (!before || before.state === state) return;
      this.stmt.setState.run(state, at, name);
      this.events.append({ kind: `machine.${state}`, machine: name, reason, data: { from: before.state, ...(data ?? {}) } }, at);
    })();
  }

  recordHeartbeat(machine: string, at: string): void {
    this.stmt.heartbeat.run(at, machine);
  }

  setAgentVersion(machine: string, version: string): void {
    this.stmt.agentVersion.run(version, machine);
  }

  setDrained(machine: string, drained: boolean, reason: string, op?: string): void {
    this.db.transaction(() => {
      const before = this.get(machine);
      if (!before || before.drained === drained) return;
      this.stmt.setDrained.run(drained ? 1 : 0, machine);
      this.events.append({ kind: drained ? 'machine.drained' : 'machine.undrained', machine, op, reason });
    })();
  }

  retire(machine: string, reason: string): void {
    this.db.transaction(() => {
      const before = this.get(machine);
      if (!before || before.retiredAt) return;
      const at = nowIso();
      this.stmt.retire.run(at, machine);
      this.events.append({ kind: 'machine.retired', machine, reason }, at);
    })();
  }

  withMastersDownOrSuspect(): { machine: string; state: MachineState }[] {
    return this.stmt.mastersDownOrSuspect.all() as { machine: string; state: MachineState }[];
  }

  partnersOf(machine: string): string[] {
    return (this.stmt.partnersOf.all(machine) as { machine: string }[]).map((r) => r.machine);
  }

  add(m: MachineInput, at: string): void {
    this.stmt.insert.run(m.name, m.address, JSON.stringify(m.disks), m.slotCapacity, m.rack, JSON.stringify(m.slotIps ?? []), at, at);
  }

  update(m: MachineInput): void {
    this.stmt.update.run(m.address, JSON.stringify(m.disks), m.slotCapacity, m.rack, JSON.stringify(m.slotIps ?? []), m.name);
  }

  remove(name: string): void {
    this.stmt.delete.run(name);
  }
}
