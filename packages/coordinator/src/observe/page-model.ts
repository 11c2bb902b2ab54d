// What the status page draws, and nothing else: the Status reply carries every slot's Cyrus log lines, paths, report
// times and the mailboxes named by its backlog — 53 MB for 9,000 stores, where the page draws ~300 bytes a store. Ages
// are rounded to what the page shows (seconds, then minutes, then tenths of an hour), so that a frame changes only when
// what a person sees changes.
import type { MachineInfo, OperationInfo, SlotInfo, StoreInfo } from '@slotctl/shared';

export interface PageSource {
  status: {
    healthy: boolean;
    problems: string[];
    backend?: string;
    term?: number;
    machines: MachineInfo[];
    stores: StoreInfo[];
    operations: OperationInfo[];
  };
  events: { id: number; at: string; kind: string; machine: string | null; store: string | null; slot: string | null; reason: string; actor: string | null }[];
}

/** Milliseconds as the page shows them, rounded to its precision: 10 s steps, then minutes, then 6-minute steps. */
export function coarseAgeMs(ms: number): number {
  if (!ms) return 0;
  const step = ms < 120_000 ? 10_000 : ms < 7_200_000 ? 60_000 : 360_000;
  return Math.max(step, Math.round(ms / step) * step);
}

function slot(s: SlotInfo | null | undefined, withBacklog: boolean) {
  if (!s?.name) return null;
  const b = s.backlog;
  return {
    name: s.name,
    machine: s.machine,
    ip: s.ip,
    state: s.state,
    ...(s.lastError ? { lastError: s.lastError } : {}),
    ...(withBacklog && b ? { backlog: { files: b.files, bytes: b.bytes, stalled: b.stalled, oldestChangeAgeMs: coarseAgeMs(Number(b.oldestChangeAgeMs ?? 0)) } } : {}),
  };
}

/** The page's model as the JSON sent to it. */
export function pageModelJson(source: PageSource): string {
  const st = source.status;
  return JSON.stringify({
    status: {
      healthy: st.healthy,
      problems: st.problems,
      backend: st.backend ?? '',
      term: st.term ?? 0,
      operations: st.operations.map((op) => ({ id: op.id, kind: op.kind, store: op.store, machine: op.machine, step: op.step, waiting: op.waiting, createdAt: op.createdAt, steps: (op.steps ?? []).map((s) => ({ step: s.step, reason: s.reason })) })),
      machines: st.machines.map((m) => ({ name: m.name, state: m.state, drained: m.drained, connected: m.connected, slots: m.slots, masters: m.masters, fanOut: m.fanOut, stateSince: m.stateSince })),
      stores: st.stores.map((s) => ({ name: s.name, health: s.health, epoch: s.epoch, ...(s.problems?.length ? { problems: s.problems } : {}), master: slot(s.master, true), replica: slot(s.replica, false) })),
    },
    events: source.events,
  });
}
