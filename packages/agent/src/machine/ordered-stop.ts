// Stopping every slot of the machine so that nothing acknowledged is lost (system shutdown, --stop-slots-on-exit).
// Masters first: their listeners close, deliveries in flight finish (SlotSupervisor.stop) and no new mail is
// accepted; then each one's leftover sync logs are replayed to its replica — the changes the rolling sync_client had
// not sent yet — so that a failover while this machine is down has nothing at risk. Replicas last: until then they
// take their masters' changes (their masters are on other machines and keep serving). Before, every slot stopped at
// once and a master's last changes stayed on this machine's disk until it came back (`slotctl store recover`).
import { withContext, type Logger } from '@slotctl/shared';
import type { SlotSupervisor } from '../slot/supervisor.js';
import { replaySyncLogs } from '../sync/replay.js';

/** Per master, at most this long for its leftover logs (the stop extends systemd's timeout as it goes). */
const FLUSH_TIMEOUT_MS = 60_000;
/** A master's stop: up to 15 s for LMTP deliveries in flight (LMTP_DRAIN_MS), then 10 s to SIGKILL, and a margin. */
const MASTER_STOP_MS = 30_000;
/** A replica's stop: 10 s to SIGKILL, and a margin. */
const REPLICA_STOP_MS = 15_000;

export interface OrderedStopOptions {
  why: string;
  syncPort: number;
  log: Logger;
  /** The lease still holds: only then may a stopped master's logs go to its replica (never after a promotion). */
  mayReplay: () => boolean;
  /** A step begins that may take up to `ms` (the caller extends its stop timeout and says what it is doing). */
  progress: (what: string, ms: number) => void;
  /** Logs a sync of everything for a master whose sync log missed changes; false when it could not. */
  logUnlogged?: (s: SlotSupervisor) => Promise<boolean>;
}

/** Which slots stop in which phase: masters (stopped, then flushed), then every other slot. Pure. */
export function stopPhases(slots: ReadonlyArray<{ name: string; role: string | undefined }>): { masters: string[]; others: string[] } {
  const masters = slots.filter((s) => s.role === 'MASTER').map((s) => s.name);
  return { masters, others: slots.filter((s) => s.role !== 'MASTER').map((s) => s.name) };
}

export async function stopInOrder(supervisors: readonly SlotSupervisor[], o: OrderedStopOptions): Promise<void> {
  const byName = new Map(supervisors.map((s) => [s.name, s]));
  const { masters, others } = stopPhases(supervisors.map((s) => ({ name: s.name, role: s.desired?.role })));
  o.progress(`stopping ${masters.length} master slot(s), then flushing their sync logs to the replicas`, MASTER_STOP_MS);
  await Promise.all(masters.map((name) => flushMaster(byName.get(name)!, o)));
  o.progress(`stopping ${others.length} replica slot(s)`, REPLICA_STOP_MS);
  await Promise.all(others.map((name) => byName.get(name)!.stop(o.why)));
}

async function flushMaster(s: SlotSupervisor, o: OrderedStopOptions): Promise<void> {
  const d = s.desired!;
  const log = withContext(o.log, { slot: s.name, store: d.store, epoch: d.epoch });
  const wasRunning = s.lifecycle === 'serving' || s.lifecycle === 'starting';
  await s.stop(o.why);
  // a master that was not running has nothing new; one whose lease is gone may have been replaced by its replica
  if (!wasRunning || !s.layout || !d.peerIp) return;
  if (!o.mayReplay()) {
    log.warn('lease no longer held: the stopped master\'s leftover sync logs stay on disk (slotctl store recover)');
    return;
  }
  o.progress(`flushing the sync logs of ${s.name} to its replica ${d.peerIp}`, FLUSH_TIMEOUT_MS);
  if (o.logUnlogged && !(await o.logUnlogged(s).catch(() => false))) {
    log.error('changes its sync log missed could not be logged (meta partition full?): the replica may lack them; they stay marked (slotctl status)');
  }
  const r = await replaySyncLogs(s.layout, { ip: d.peerIp, port: o.syncPort }, log, FLUSH_TIMEOUT_MS).catch((err: Error) => ({ ok: false, replayed: [], error: err.message, remaining: [] as string[] }));
  if (r.ok) log.info({ replayed: r.replayed }, 'stopped master flushed: its replica has every change');
  else log.error({ replayed: r.replayed, error: r.error, remaining: r.remaining }, 'stopped master not flushed: its leftover sync logs stay on disk (slotctl store recover after a failover)');
}
