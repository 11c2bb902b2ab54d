// Text output for people. Scripts use --json, which prints the reply objects as they are.
import Table from 'cli-table3';
import { formatDuration, type EventInfo__Output as EventInfo, type MachineInfo__Output as MachineInfo, type StoreInfo__Output as StoreInfo, type SlotInfo__Output as SlotInfo } from '@slotctl/shared';

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

export function machinesTable(machines: readonly MachineInfo[]): string {
  return table(
    ['machine', 'address', 'state', 'since', 'agent', 'last heartbeat', 'slots', 'masters'],
    machines.map((m) => [
      m.name!,
      m.address!,
      m.drained ? `${m.state} (drained)` : m.state!,
      ago(m.stateSince!),
      m.connected ? `connected ${m.agentVersion}` : 'not connected',
      ago(m.lastHeartbeat!),
      m.slots!,
      m.masters!,
    ]),
  );
}

function slotCell(slot: SlotInfo | null | undefined): string {
  if (!slot) return '-';
  const state = slot.state ? slot.state.toLowerCase() : 'unknown';
  return `${slot.name}@${slot.machine} ${state}`;
}

function backlogCell(slot: SlotInfo | null | undefined): string {
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

export function eventsText(events: readonly EventInfo[]): string {
  return events
    .map((e) => {
      const where = [e.machine && `machine=${e.machine}`, e.store && `store=${e.store}`, e.slot && `slot=${e.slot}`, e.epoch ? `epoch=${e.epoch}` : '', e.op && `op=${e.op}`]
        .filter(Boolean)
        .join(' ');
      return `${e.at}  #${e.id}  ${e.kind}  ${where}  ${e.reason}`;
    })
    .join('\n');
}
