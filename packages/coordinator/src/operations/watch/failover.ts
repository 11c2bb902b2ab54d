// Machine loss, level-triggered (every evaluation): stores whose master is on a machine declared down get one
// failover operation each (kinds/failover.ts), unless more machines with masters are down at once than automatic
// failover allows (a network problem is likelier then: a critical event, and an operator decides with
// `slotctl machine failover M --force`). What happens to each store of a down machine is FAILOVER_WATCH_RULES; a
// store that cannot fail over now gets an event when the reason changes.
import { ConflictError } from '@slotctl/shared';
import type { OperationRow, StoreRow } from '../../db/rows.js';
import type { KindContext } from '../framework/kind.js';
import { firstMatch, type CheckRule } from '../framework/rule.js';
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

/** One store of a machine that fails over automatically. */
export interface DownStoreView {
  store: StoreRow;
  machine: string;
  /** The operation running on the store, if any. */
  running: OperationRow | undefined;
  /** What a failover's preflight finds wrong (read only when the rows get that far). */
  problems: () => string[];
}

export type FailoverWatchAction = 'cancel-switchover' | 'none' | 'report-blocked' | 'start-failover';

export const FAILOVER_WATCH_RULES: readonly CheckRule<DownStoreView, FailoverWatchAction>[] = [
  {
    name: 'switchover-against-a-down-machine',
    doc: 'a switchover of the store runs (not yet asked to cancel): it is cancelled, the failover follows once it ended',
    when: (v) => (v.running?.kind === 'switchover' && !v.running.cancelRequested ? `switchover ${v.running.id} of ${v.store.name} runs against the down machine ${v.machine}` : undefined),
    action: 'cancel-switchover',
  },
  {
    name: 'busy',
    doc: 'another operation runs on the store: wait for it',
    when: (v) => (v.running ? `${v.running.kind} ${v.running.id} runs on ${v.store.name}` : undefined),
    action: 'none',
  },
  {
    name: 'blocked',
    doc: "the failover's preflight finds a problem (the replica not up to date, its machine not up…): a critical event, once per reason",
    when: (v) => v.problems().join('; ') || undefined,
    action: 'report-blocked',
  },
  {
    name: 'fail-over',
    doc: 'otherwise: a failover operation for the store',
    when: (v) => `${v.machine} is down`,
    action: 'start-failover',
  },
];

export class FailoverWatch {
  /** The machines withheld at the last check, so that the critical event is written once per situation. */
  private withheldAlarm = new Set<string>();
  /** Per store: why an automatic failover cannot start now (an event when it changes, not an operation per tick). */
  private readonly blocked = new Map<string, string>();

  private readonly actions: Record<FailoverWatchAction, (v: DownStoreView, detail: string) => void> = {
    'cancel-switchover': (v) => this.ctx.cancelQuietly(v.running!),
    none: () => undefined,
    'report-blocked': (v, why) => {
      if (this.blocked.get(v.store.name) === why) return;
      this.blocked.set(v.store.name, why);
      const reason = `no automatic failover of ${v.store.name} for now: ${why}`;
      this.ctx.storage.events.append({ kind: 'store.failover-blocked', store: v.store.name, machine: v.machine, reason, data: { severity: 'critical' } });
      this.ctx.log.error({ store: v.store.name, machine: v.machine }, reason);
    },
    'start-failover': (v) => {
      this.blocked.delete(v.store.name);
      try {
        createFailover(this.ctx, v.store.name, false);
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    },
  };

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
        const v: DownStoreView = { store, machine, running: busy.get(store.name), problems: () => previewFailover(this.ctx, store.name, false).problems };
        const fired = firstMatch(FAILOVER_WATCH_RULES, v);
        if (fired) this.actions[fired.rule.action](v, fired.detail);
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
