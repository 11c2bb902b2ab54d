// Pure: what `slotctl status` shows, computed from database rows and the set of connected agents. Problems are
// sorted worst first so that the first line of the screen is the one that matters.
import type { MachineInfo, SlotInfo, StoreInfo } from '@slotctl/shared';
import type { MachineRow, SlotRow, StoreRow } from '../db/rows.js';
import type { CleanupConfig } from '../cleanup/config.js';
import { diskLevel, usedPercent } from '../cleanup/schedule.js';

export interface ClusterRows {
  machines: readonly MachineRow[];
  stores: readonly StoreRow[];
  slots: readonly SlotRow[];
  connected: ReadonlySet<string>;
  /** Connected machines whose agent says it holds no lease: their masters are stopped. */
  fenced: ReadonlySet<string>;
  /** Machines heard only through a partner's relay, with that partner. */
  relayed?: ReadonlyMap<string, string> | undefined;
  /** Disk thresholds: a partition over them is a problem. */
  disks?: CleanupConfig | undefined;
}

export interface Problem {
  severity: 0 | 1 | 2; // 0 critical, 1 warning, 2 notice
  text: string;
}

export interface ClusterView {
  healthy: boolean;
  problems: string[];
  machines: MachineInfo[];
  stores: StoreInfo[];
}

export function slotInfo(slot: SlotRow | undefined, store?: StoreRow): SlotInfo | undefined {
  if (!slot) return undefined;
  return {
    store: slot.store,
    desiredRole: store ? (store.masterSlot === slot.name ? 'MASTER' : 'REPLICA') : '',
    storeEpoch: store?.epoch ?? 0,
    stopped: slot.adminStopped,
    recentLog: slot.recentLog,
    stateReason: slot.stateReason,
    pid: slot.pid,
    crashesInWindow: slot.crashes,
    replay: slot.results.replay,
    name: slot.name,
    machine: slot.machine,
    ip: slot.ip,
    dataPath: slot.dataPath,
    metaPath: slot.metaPath,
    state: slot.observedState,
    role: slot.observedRole,
    epochApplied: slot.epochApplied,
    backlog: slot.backlog,
    lastError: slot.lastError,
    reportedAt: slot.reportedAt ?? '',
  };
}

/**
 * What an operator sees of a machine: the liveness state, or, for a machine that is up, `fenced` (its agent holds
 * no lease: its masters are stopped) and `returning` (an old master of it waits for its unreplicated changes to be
 * recovered).
 */
export function machineState(m: MachineRow, fenced: boolean, returning: boolean): string {
  if (m.retiredAt) return 'retired';
  if (m.state !== 'up') return m.state;
  return fenced ? 'fenced' : returning ? 'returning' : 'up';
}

function machineProblems(m: MachineRow, connected: boolean, state: string, via: string | undefined): Problem[] {
  // a retired machine is gone by decision; what it left behind shows on its stores
  if (state === 'retired') return [];
  if (m.state === 'down') return [{ severity: 0, text: `machine ${m.name} is down since ${m.stateSince}` }];
  if (state === 'fenced') return [{ severity: 0, text: `machine ${m.name} is fenced: its agent holds no lease, its masters are stopped until one is acknowledged` }];
  if (state === 'returning') return [{ severity: 1, text: `machine ${m.name} is returning: an old master of it waits for recovery (slotctl store at-risk)` }];
  if (m.state === 'suspect') return [{ severity: 1, text: `machine ${m.name} is suspect (missed heartbeats) since ${m.stateSince}` }];
  if (m.state === 'unknown') return [{ severity: 1, text: `machine ${m.name}: no agent has reported yet` }];
  if (via) return [{ severity: 1, text: `machine ${m.name} is up via ${via}: cut from the coordinator, its heartbeats relayed by a partner (its masters keep serving; no new desired state reaches it until it reconnects)` }];
  if (!connected) return [{ severity: 1, text: `machine ${m.name}: agent not connected` }];
  return [];
}

function slotProblems(store: StoreRow, slot: SlotRow | undefined, role: 'master' | 'replica', machine: MachineRow | undefined): Problem[] {
  if (!slot) return [{ severity: 0, text: `store ${store.name}: ${role} slot is missing from the database` }];
  const where = `store ${store.name}: ${role} slot ${slot.name} on ${slot.machine}`;
  const critical = role === 'master' ? 0 : 1;
  if (machine && machine.state !== 'up') return [{ severity: critical, text: `${where}: machine is ${machine.state} since ${machine.stateSince}` }];
  const out: Problem[] = [];
  if (slot.recoveryHold) out.push({ severity: critical, text: `${where} is held stopped since failover ${slot.recoveryHold}: its unreplicated changes wait for slotctl store recover ${store.name}` });
  else if (slot.adminStopped) out.push({ severity: critical, text: `${where} is stopped by an operator (slotctl slot start ${slot.name})` });
  else if (slot.observedState === 'unknown') out.push({ severity: critical, text: `${where}: not reported yet` });
  else if (slot.observedState !== 'SERVING') {
    out.push({ severity: critical, text: `${where} is ${slot.observedState.toLowerCase()}${slot.lastError ? `: ${slot.lastError}` : ''}` });
  } else if (slot.epochApplied > store.epoch) {
    out.push({ severity: 0, text: `${where} has applied epoch ${slot.epochApplied}, newer than the database's ${store.epoch}: was the database restored from an old copy?` });
  } else if (slot.epochApplied < store.epoch) {
    out.push({ severity: critical, text: `${where} has applied epoch ${slot.epochApplied}, not ${store.epoch} yet` });
  }
  if (slot.seeding) out.push({ severity: 1, text: `${where} is a new replica being filled and checked by ${slot.seeding}: not promotable until verified` });
  if (role === 'master' && slot.backlog.stalled) {
    out.push({ severity: 1, text: `${where}: replication stalled (${slot.backlog.files} log file(s)): ${slot.backlog.stallReason}` });
  }
  if (slot.backlog.unloggedSince) {
    // the store still serves (degraded, not down); what to do depends on the role the slot has now
    out.push({
      severity: 1,
      text: role === 'master'
        ? `${where}: changes since ${slot.backlog.unloggedSince} may be missing from its sync log (its meta partition full or failing): free space there; until its agent has logged a sync of every mailbox, a failover puts them all at risk`
        : `${where}: as master it made changes since ${slot.backlog.unloggedSince} that its sync log missed: every mailbox it holds waits for slotctl store recover ${store.name}`,
    });
  }
  return out;
}

export function buildClusterView(rows: ClusterRows): ClusterView {
  const slots = new Map(rows.slots.map((s) => [s.name, s]));
  const machines = new Map(rows.machines.map((m) => [m.name, m]));
  const problems: Problem[] = [];

  const masterCount = new Map<string, number>();
  const peers = new Map<string, Set<string>>();
  const slotCount = new Map<string, number>();
  for (const slot of rows.slots) slotCount.set(slot.machine, (slotCount.get(slot.machine) ?? 0) + 1);

  // a slot of a store that is neither its master nor its replica: a replica being moved in
  const storeByName = new Map(rows.stores.map((st) => [st.name, st]));
  const moving = new Map<string, SlotRow>();
  for (const s of rows.slots) {
    const st = s.seeding ? storeByName.get(s.store) : undefined;
    if (st && st.masterSlot !== s.name && st.replicaSlot !== s.name) moving.set(s.store, s);
  }
  const stores: StoreInfo[] = rows.stores.map((store) => {
    const master = slots.get(store.masterSlot);
    const replica = slots.get(store.replicaSlot);
    if (master) masterCount.set(master.machine, (masterCount.get(master.machine) ?? 0) + 1);
    if (master && replica) peers.set(master.machine, (peers.get(master.machine) ?? new Set()).add(replica.machine));
    const masterProblems = slotProblems(store, master, 'master', master && machines.get(master.machine));
    const replicaProblems = slotProblems(store, replica, 'replica', replica && machines.get(replica.machine));
    const own = [...masterProblems, ...replicaProblems];
    problems.push(...own);
    const health = masterProblems.some((p) => p.severity === 0) ? 'down' : own.length ? 'degraded' : 'ok';
    return {
      name: store.name,
      epoch: store.epoch,
      serviceIp: store.serviceIp,
      master: slotInfo(master, store),
      replica: slotInfo(replica, store),
      ...(moving.has(store.name) ? { moving: slotInfo(moving.get(store.name), store) } : {}),
      health,
      problems: own.map((p) => p.text),
    };
  });

  const returning = new Set(rows.slots.filter((s) => s.recoveryHold).map((s) => s.machine));
  const machineInfos: MachineInfo[] = rows.machines.map((m) => {
    const state = machineState(m, rows.fenced.has(m.name), returning.has(m.name));
    const via = rows.relayed?.get(m.name);
    problems.push(...machineProblems(m, rows.connected.has(m.name), state, via));
    return {
      name: m.name,
      address: m.address,
      state,
      stateSince: m.stateSince,
      lastHeartbeat: m.lastHeartbeat ?? '',
      agentVersion: m.agentVersion,
      connected: rows.connected.has(m.name),
      drained: m.drained,
      disks: m.disks,
      slots: slotCount.get(m.name) ?? 0,
      masters: masterCount.get(m.name) ?? 0,
      fanOut: peers.get(m.name)?.size ?? 0,
      peers: [...(peers.get(m.name) ?? [])].sort(),
      slotCapacity: m.slotCapacity,
      rack: m.rack,
      retired: m.retiredAt !== '',
      relayedVia: via ?? '',
    };
  });

  if (rows.disks) {
    for (const slot of rows.slots) {
      for (const p of slot.partitions) {
        const level = diskLevel(p, rows.disks);
        if (level === 'ok') continue;
        const u = usedPercent(p);
        problems.push({ severity: level === 'critical' ? 0 : 1, text: `${p.role} partition ${p.path} of ${slot.name} on ${slot.machine} is ${Math.max(u.bytes, u.inodes)} % full (${level}); ${p.deletedBytes + p.expungedBytes} bytes wait for cleanup (slotctl cleanup run --slot ${slot.name})` });
      }
    }
  }
  problems.sort((a, b) => a.severity - b.severity);
  return { healthy: problems.length === 0, problems: problems.map((p) => p.text), machines: machineInfos, stores };
}
