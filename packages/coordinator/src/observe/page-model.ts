// What the status page draws, and nothing else: the Status reply carries every slot's Cyrus log lines, paths, report
// times and the mailboxes named by its backlog — 53 MB for 9,000 stores, where the page draws ~300 bytes a store. Ages
// are rounded to what the page shows (seconds, then minutes, then tenths of an hour), so that a frame changes only when
// what a person sees changes.
import type { MachineInfo, OperationInfo, StoreInfo } from '@slotctl/shared';

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

/**
 * A store as one row of the page's table, an array in the order of STORE_COLUMNS: 9,000 stores as objects made a
 * 2.4 MB frame, as rows 0.7 MB (the page's first render waited mostly for the transfer).
 */
export const STORE_COLUMNS = ['name', 'health', 'epoch', 'masterSlot', 'masterMachine', 'masterState', 'replicaSlot', 'replicaMachine', 'replicaState', 'backlogFiles', 'backlogBytes', 'stalled', 'oldestChangeAgeMs', 'problems'] as const;

function storeRow(s: StoreInfo): unknown[] {
  const m = s.master;
  const r = s.replica;
  const b = m?.backlog;
  const row: unknown[] = [s.name, s.health || 'unknown', Number(s.epoch ?? 0), m?.name || '', m?.machine || '', m?.state || '', r?.name || '', r?.machine || '', r?.state || '', Number(b?.files ?? 0), Number(b?.bytes ?? 0), b?.stalled ? 1 : 0, coarseAgeMs(Number(b?.oldestChangeAgeMs ?? 0))];
  const problems = [...(s.problems ?? []), ...(m?.lastError ? [`${m.name}: ${m.lastError}`] : []), ...(r?.lastError ? [`${r.name}: ${r.lastError}`] : [])];
  if (problems.length) row.push(problems);
  return row;
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
      machines: st.machines.map((m) => ({ name: m.name, state: m.state, drained: m.drained, relayedVia: m.relayedVia, connected: m.connected, slots: m.slots, masters: m.masters, fanOut: m.fanOut, stateSince: m.stateSince })),
      storeColumns: STORE_COLUMNS,
      stores: st.stores.map(storeRow),
    },
    events: source.events,
  });
}
