// Text output for people, the helpers more than one command uses. Scripts use --json, which prints the reply
// objects as they are.
import Table from 'cli-table3';
import { formatDuration, type OperationInfo__Output as OperationInfo, type MachineInfo__Output as MachineInfo, type StoreInfo__Output as StoreInfo, type SlotInfo__Output as SlotInfo } from '@slotctl/shared';

export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({ head, style: { head: [], border: [] }, chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' } });
  t.push(...rows.map((row) => row.map(String)));
  return t.toString();
}

export function ago(iso: string, now = Date.now()): string {
  if (!iso) return '-';
  const ms = now - Date.parse(iso);
  return Number.isNaN(ms) ? iso : `${formatDuration(Math.max(0, ms))} ago`;
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

export function machinesTable(machines: readonly MachineInfo[]): string {
  return table(
    ['machine', 'address', 'state', 'since', 'agent', 'last heartbeat', 'slots', 'masters', 'fan-out'],
    machines.map((m) => [
      m.name!,
      m.address!,
      m.drained ? `${m.state} (drained)` : m.state!,
      ago(m.stateSince!),
      m.connected ? `connected ${m.agentVersion}` : 'not connected',
      ago(m.lastHeartbeat!),
      `${m.slots!}/${m.slotCapacity!}`,
      m.masters!,
      // how many peers would take over its masters if it were lost
      m.masters ? `${m.fanOut} (${m.peers.join(' ')})` : '-',
    ]),
  );
}

function slotCell(slot: SlotInfo | null | undefined): string {
  if (!slot) return '-';
  const state = slot.state ? slot.state.toLowerCase() : 'unknown';
  return `${slot.name}@${slot.machine} ${state}`;
}

export function backlogCell(slot: SlotInfo | null | undefined): string {
  const b = slot?.backlog;
  if (!b || !b.files) return '0';
  const age = b.oldestChangeAgeMs ? `, oldest ${formatDuration(Number(b.oldestChangeAgeMs))}` : '';
  return `${b.files} file(s), ${b.mailboxes} mbox${age}${b.stalled ? ' STALLED' : ''}`;
}

export function storesTable(stores: readonly StoreInfo[]): string {
  return table(
    ['store', 'health', 'epoch', 'service ip', 'master', 'replica', 'backlog'],
    stores.map((s) => [s.name!, s.health!, s.epoch!, s.serviceIp!, slotCell(s.master), slotCell(s.replica), backlogCell(s.master)]),
  );
}
