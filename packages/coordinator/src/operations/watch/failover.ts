// Machine loss, level-triggered (every evaluation): stores whose master is on a machine declared down get one
// failover operation each (kinds/failover.ts), unless more machines with masters are down at once than automatic
// failover allows (a network problem is likelier then: a critical event, and an operator decides with
// `slotctl machine failover M --force`). A store that cannot fail over now gets an event when the reason changes.
import { ConflictError } from '@slotctl/shared';
import type { OperationRow } from '../../db/rows.js';
import type { KindContext } from '../framework/kind.js';
import { createFailover, previewFailover } from '../kinds/failover.js';

/**
 * Pure: which machines' stores fail over automatically. More machines with masters down at once than allowed: none
 * (withheld: a network problem is likelier). While another machine with masters is only suspect, wait: if it goes
 * down too, that is two at once.
 */
export function automaticFailover(down: readonly string[], suspect: readonly string[], maxMachines: number): { machines: string[]; withheld: string[]; waitingFor: string[] } {
  if (down.length > maxMachines) return { machines: [], withheld: [...down], waitingFor: [] };
  if (down.length + suspect.length > maxMachines) return { machines: [], withheld: [], waitingFor: [...suspect] };
  return { machines: [...down], withheld: [], waitingFor: [] };
}

export class FailoverWatch {
  /** The machines withheld at the last check, so that the critical event is written once per situation. */
  private withheldAlarm = new Set<string>();
  /** Per store: why an automatic failover cannot start now (an event when it changes, not an operation per tick). */
  private readonly blocked = new Map<string, string>();

  constructor(private readonly ctx: KindContext, private readonly maxAutomaticMachines: number) {}

  /** Level-triggered: start the failovers that are due; alarm when too many machines are down at once. */
  check(running: readonly OperationRow[]): void {
    // runs on every evaluation: only machines holding masters that are down or suspect are read (usually none)
    const affected = this.ctx.storage.machines.withMastersDownOrSuspect();
    const machines = affected.filter((m) => m.state === 'down').map((m) => m.machine);
    const suspect = affected.filter((m) => m.state === 'suspect').map((m) => m.machine);
    const { machines: automatic, withheld } = automaticFailover(machines, suspect, this.maxAutomaticMachines);
    this.alarm(withheld);
    if (automatic.length === 0) return;
    const busy = new Map(running.filter((o) => o.store).map((o) => [o.store!, o]));
    for (const machine of automatic) {
      for (const store of this.ctx.storage.stores.masteredOn(machine)) {
        const op = busy.get(store.name);
        if (op) {
          if (op.kind === 'switchover' && !op.cancelRequested) this.ctx.cancelQuietly(op);
          continue;
        }
        const why = previewFailover(this.ctx, store.name, false).problems.join('; ');
        if (why) {
          if (this.blocked.get(store.name) !== why) {
            this.blocked.set(store.name, why);
            this.ctx.storage.events.append({ kind: 'store.failover-blocked', store: store.name, machine, reason: `no automatic failover of ${store.name} for now: ${why}`, data: { severity: 'critical' } });
            this.ctx.log.error({ store: store.name, machine }, `no automatic failover of ${store.name} for now: ${why}`);
          }
          continue;
        }
        this.blocked.delete(store.name);
        try {
          createFailover(this.ctx, store.name, false);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
        }
      }
    }
  }

  /**
   * The critical event when machines are withheld from automatic failover: once when a machine joins the withheld
   * set, not again as the set shrinks (after a coordinator's cold start, a thousand machines coming back one by one
   * each rewrote a thousand names).
   */
  private alarm(withheld: readonly string[]): void {
    const joined = withheld.filter((m) => !this.withheldAlarm.has(m));
    this.withheldAlarm = new Set(withheld);
    if (joined.length === 0) return;
    const shown = withheld.length > 20 ? `${withheld.slice(0, 20).join(', ')} and ${withheld.length - 20} more` : withheld.join(', ');
    const reason = `${withheld.length} machines with masters are down at once (${shown}): no automatic failover (limit ${this.maxAutomaticMachines}) — a network problem is likelier than that many machines dying. Check the network; to fail over a machine anyway: slotctl machine failover MACHINE --force`;
    this.ctx.storage.events.append({ kind: 'cluster.failover-withheld', reason, data: { severity: 'critical', machines: withheld } });
    this.ctx.log.error({ machines: withheld.length, joined: joined.slice(0, 20) }, reason);
  }
}
