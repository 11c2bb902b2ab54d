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

export function slotsTable(slots: readonly SlotInfo[]): string {
  return table(
    ['slot', 'machine', 'store', 'role', 'state', 'epoch', 'ip', 'backlog'],
    slots.map((s) => [
      s.name,
      s.machine,
      s.store,
      s.desiredRole.toLowerCase() + (s.role && s.role !== s.desiredRole ? ` (runs ${s.role.toLowerCase()})` : ''),
      (s.stopped ? 'stopped by operator, ' : '') + (s.state ? s.state.toLowerCase() : 'unknown'),
      s.epochApplied === s.storeEpoch ? s.epochApplied : `${s.epochApplied} (store ${s.storeEpoch})`,
      s.ip,
      backlogCell(s),
    ]),
  );
}

export function slotDetail(s: SlotInfo): string {
  const b = s.backlog;
  const lines = [
    `slot ${s.name} on ${s.machine}, store ${s.store}`,
    `  role        ${s.desiredRole.toLowerCase()} (epoch ${s.storeEpoch}); agent applied epoch ${s.epochApplied}${s.role ? ` as ${s.role.toLowerCase()}` : ''}`,
    `  state       ${s.state ? s.state.toLowerCase() : 'unknown'}${s.stopped ? ' (stopped by operator)' : ''}${s.pid ? `, cyrmaster pid ${s.pid}` : ''}`,
    `  why         ${s.stateReason || '-'}`,
    `  crashes     ${s.crashesInWindow} in the last minute`,
    `  address     ${s.ip}; data ${s.dataPath}; meta ${s.metaPath}`,
    `  backlog     ${b && b.files ? `${b.files} file(s), ${b.bytes} bytes, ${b.mailboxes} mailbox(es), oldest change ${formatDuration(Number(b.oldestChangeAgeMs))} ago` : 'empty'}${b?.stalled ? `\n  STALLED     ${b.stallReason}` : ''}`,
    `  last error  ${s.lastError || '-'}`,
    `  last replay ${s.replay?.op ? (s.replay.ok ? `ok, ${s.replay.replayed.length} file(s) in ${s.replay.ms} ms` : `FAILED at ${s.replay.failedFile || '-'}: ${s.replay.error}`) + ` (${s.replay.op}, ${s.replay.finishedAt})` : '-'}`,
    `  reported    ${ago(s.reportedAt)}`,
    '  recent log:',
    ...(s.recentLog.length ? s.recentLog.slice(-10).map((l) => `    ${l}`) : ['    (none reported)']),
  ];
  return lines.join('\n');
}
