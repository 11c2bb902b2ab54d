// Text output for people, the helpers more than one command uses. Scripts use --json, which prints the reply
// objects as they are. Tables fit the terminal (table-fit.ts); each one says here what gives way first.
import { formatDuration, type OperationInfo__Output as OperationInfo, type MachineInfo__Output as MachineInfo, type StoreInfo__Output as StoreInfo, type SlotInfo__Output as SlotInfo } from '@slotctl/shared';
import { drawTable, fitTable, type TableSpec } from './table-fit.js';

/** A table as it is, however wide (the planner's answers, which golden files pin). */
export function table(head: string[], rows: (string | number)[][]): string {
  return drawTable(head, rows);
}

/** How long ago a recorded time was ("4m10s"), or undefined when there is no time or it does not parse. */
function elapsed(iso: string, now = Date.now()): string | undefined {
  const ms = iso ? now - Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? undefined : formatDuration(Math.max(0, ms));
}

export function ago(iso: string, now = Date.now()): string {
  const e = elapsed(iso, now);
  return e ? `${e} ago` : iso || '-';
}

/** `ago` without the word, for a column whose header already says it. */
export function agoShort(iso: string, now = Date.now()): string {
  return elapsed(iso, now) ?? (iso || '-');
}

/** A recorded time to the minute without the year ("11-29 09:58"), for narrow tables. */
export function shortTime(iso: string): string {
  return iso ? iso.slice(5, 16).replace('T', ' ') : '-';
}

/** Seconds between two recorded times, as operations print them. */
export function seconds(fromIso: string, toIso: string): string {
  return `${((Date.parse(toIso) - Date.parse(fromIso)) / 1000).toFixed(2)} s`;
}

/** The time of day of a recorded time, to the millisecond. */
export function clock(iso: string): string {
  return iso.slice(11, 23);
}

/** What an operation works on: a drain its machine, a rebalance the cluster, anything else its store. */
export function operationTarget(op: OperationInfo): string {
  return op.kind === 'drain' ? `machine ${op.machine}` : op.kind === 'rebalance' ? 'the cluster' : `store ${op.store}`;
}

// The address is configuration, not state; ages and the agent's words shorten before anything goes; the fan-out's
// peer list is detail the number sums up.
const MACHINES: TableSpec<MachineInfo> = {
  columns: [
    { head: 'machine', cell: (m) => m.name },
    { head: 'address', cell: (m) => m.address },
    { head: 'state', cell: (m) => `${m.state}${m.relayedVia ? ` (via ${m.relayedVia})` : ''}${m.drained ? ' (drained)' : ''}` },
    { head: 'since', cell: (m) => ago(m.stateSince), short: { cell: (m) => agoShort(m.stateSince) } },
    { head: 'agent', cell: (m) => (m.connected ? `connected ${m.agentVersion}` : 'not connected'), short: { cell: (m) => (m.connected ? m.agentVersion || 'yes' : '-') } },
    { head: 'last heartbeat', cell: (m) => ago(m.lastHeartbeat), short: { head: 'heartbeat', cell: (m) => agoShort(m.lastHeartbeat) } },
    { head: 'slots', cell: (m) => `${m.slots}/${m.slotCapacity}` },
    { head: 'masters', cell: (m) => m.masters },
    // how many peers would take over its masters if it were lost
    { head: 'fan-out', cell: (m) => (m.masters ? `${m.fanOut} (${m.peers.join(' ')})` : '-'), short: { cell: (m) => (m.masters ? m.fanOut : '-') } },
  ],
  fit: [
    { shorten: 'fan-out' },
    { drop: 'address' },
    { shorten: 'agent' },
    [{ shorten: 'since' }, { shorten: 'last heartbeat' }],
    { drop: 'last heartbeat' },
    { drop: 'since' },
    { drop: 'agent' },
    { drop: 'fan-out' },
  ],
};

export function machinesTable(machines: readonly MachineInfo[], width = Infinity): string {
  return fitTable(MACHINES, machines, width);
}

function slotCell(slot: SlotInfo | null | undefined): string {
  if (!slot) return '-';
  const state = slot.state ? slot.state.toLowerCase() : 'unknown';
  return `${slot.name}@${slot.machine} ${state}`;
}

/** A store's slot in few characters: its machine (its name too when it is not the default STORE-MACHINE) and its state unless it serves. */
function slotBrief(store: StoreInfo, slot: SlotInfo | null | undefined): string {
  if (!slot) return '-';
  const name = slot.name === `${store.name}-${slot.machine}` ? slot.machine : `${slot.name}@${slot.machine}`;
  const state = slot.state ? slot.state.toLowerCase() : 'unknown';
  return state === 'serving' ? name : `${name} ${state}`;
}

export function backlogCell(slot: SlotInfo | null | undefined): string {
  const b = slot?.backlog;
  if (!b || !b.files) return b?.unloggedSince ? '0 UNLOGGED' : '0';
  const age = b.oldestChangeAgeMs ? `, oldest ${formatDuration(Number(b.oldestChangeAgeMs))}` : '';
  return `${b.files} file(s), ${b.mailboxes} mbox${age}${b.stalled ? ' STALLED' : ''}${b.unloggedSince ? ' UNLOGGED' : ''}`;
}

/** The backlog in fewer words, STALLED first so that a cut never loses it. */
export function backlogBrief(slot: SlotInfo | null | undefined): string {
  const b = slot?.backlog;
  if (!b || !b.files) return b?.unloggedSince ? 'UNLOGGED 0' : '0';
  const age = b.oldestChangeAgeMs ? `, ${formatDuration(Number(b.oldestChangeAgeMs))}` : '';
  return `${b.unloggedSince ? 'UNLOGGED ' : ''}${b.stalled ? 'STALLED ' : ''}${b.files} file${b.files === 1 ? '' : 's'}, ${b.mailboxes} mbox${age}`;
}

// The service ip is configuration; the backlog shortens, then master and replica share a column, then the epoch
// goes. Store names, health, the machines and the backlog figures stay.
const STORES: TableSpec<StoreInfo> = {
  columns: [
    { head: 'store', cell: (s) => s.name },
    { head: 'health', cell: (s) => s.health },
    { head: 'epoch', cell: (s) => s.epoch },
    { head: 'service ip', cell: (s) => s.serviceIp },
    { head: 'master', cell: (s) => slotCell(s.master), short: { head: 'master -> replica', cell: (s) => `${slotBrief(s, s.master)} -> ${slotBrief(s, s.replica)}` } },
    { head: 'replica', cell: (s) => (s.moving ? `${slotCell(s.replica)} (moving to ${slotCell(s.moving)})` : slotCell(s.replica)) },
    { head: 'backlog', cell: (s) => backlogCell(s.master), short: { cell: (s) => backlogBrief(s.master) } },
  ],
  fit: [{ drop: 'service ip' }, { shorten: 'backlog' }, [{ shorten: 'master' }, { drop: 'replica' }], { drop: 'epoch' }, { truncate: 'backlog', min: 12 }],
};

export function storesTable(stores: readonly StoreInfo[], width = Infinity): string {
  return fitTable(STORES, stores, width);
}
