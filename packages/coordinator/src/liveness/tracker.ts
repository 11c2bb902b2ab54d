// Keeps the last heartbeat of each machine on a monotonic clock and applies the liveness rules on a timer.
// A coordinator that has just started counts silence from its own start, which is the grace period agents get
// to reconnect.
import type { Logger } from '@slotctl/shared';
import type { MachineState } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { decideLiveness, type HoldReason, type LivenessConfig } from './rules.js';

/** What one agent last said about how recently it heard each partner. */
interface PartnerViews {
  at: number;
  views: { machine: string; heard: boolean; lastHeardMsAgo: number }[];
}

interface Entry {
  state: MachineState;
  lastHeardMs: number;
  heard: boolean;
  everHeard: boolean;
  /** The partner whose relay brought the last heartbeat (undefined: the agent's own session or renewal). */
  via: string | undefined;
  /**
   * A hold granted (a restart or a start: see RESTART_HOLD_MS, startHoldMs): when the heartbeat that asked for it was
   * heard, plus the hold. A later heartbeat does not cancel it (the agent's lease never moves back): silence counts
   * from the later of the two.
   */
  heldUntilMs?: number;
  /** What the latest hold was asked for (the reason a machine declared down gives). */
  holdWhy?: HoldReason;
}

export class LivenessTracker {
  private readonly machines = new Map<string, Entry>();
  private readonly partnerViews = new Map<string, PartnerViews>();
  private timer: NodeJS.Timeout | undefined;
  /** Called when a machine is declared down (its relay key stops counting: it comes back through a session). */
  onDown: (machine: string) => void = () => undefined;

  constructor(
    private readonly storage: Storage,
    private readonly config: LivenessConfig,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The machine's state as this tracker holds it (undefined: not in the cluster). */
  stateOf(machine: string): MachineState | undefined {
    return this.machines.get(machine)?.state;
  }

  /** Machines whose last heartbeat came relayed, with the partner that relayed it. */
  relayedVia(): ReadonlyMap<string, string> {
    const out = new Map<string, string>();
    for (const [machine, e] of this.machines) if (e.via !== undefined && e.state === 'up') out.set(machine, e.via);
    return out;
  }

  /**
   * `graceMs`: machines known at the start count their silence from that much later (the agents' reconnect delay
   * after a coordinator restart); machines added later count from when they are added.
   */
  start(tickMs = Math.max(20, Math.min(250, Math.floor(this.config.heartbeatIntervalMs / 4))), graceMs = 0): void {
    this.reload(graceMs);
    // evaluated after the I/O that is already waiting: after the event loop was held up (a burst of work), the
    // heartbeats that arrived meanwhile sit unread in socket buffers, and a tick before them saw silence where there
    // was none (machines flapped up → suspect → up under load, each flap a transaction and an event)
    this.timer = setInterval(() => setImmediate(() => this.tick()), tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Picks up machines added or removed by a cluster apply. */
  reload(graceMs = 0): void {
    const seen = new Set<string>();
    for (const row of this.storage.machines.list()) {
      seen.add(row.name);
      if (!this.machines.has(row.name)) this.machines.set(row.name, { state: row.state, lastHeardMs: this.now() + graceMs, heard: false, everHeard: row.lastHeartbeat !== null, via: undefined });
    }
    for (const name of this.machines.keys()) if (!seen.has(name)) this.machines.delete(name);
  }

  /** A heartbeat of `machine` arrived: from its own agent, or relayed by partner `via`. */
  heard(machine: string, views?: PartnerViews['views'], via?: string): void {
    const entry = this.machines.get(machine);
    if (!entry) return;
    if (views) this.keepViews(machine, views);
    if (via !== entry.via) {
      // said on each change only: relayed heartbeats come every interval
      if (via) this.log.warn({ machine, via }, `machine ${machine} is heard only through partner ${via}: cut from the coordinator, not from its partners`);
      else this.log.info({ machine, was: entry.via }, `machine ${machine} is heard directly again`);
      entry.via = via;
    }
    entry.lastHeardMs = this.now();
    entry.heard = true;
    entry.everHeard = true;
    if (entry.state !== 'up') this.evaluate(machine, entry);
  }

  /**
   * The lease granted on the heartbeat just heard is longer by `holdMs` (a restart or a start hold): the machine is
   * declared down that much later. Called before the acknowledgement leaves, so that this side never counts a shorter
   * lease. Said in the log when a hold begins, not at every heartbeat of one (a start hold rides many): a hold of the
   * same kind asked again before the last one ended continues it. The reason kept is that of the hold that ends last.
   */
  hold(machine: string, holdMs: number, why: HoldReason): void {
    const entry = this.machines.get(machine);
    if (!entry || holdMs <= 0) return;
    const holding = entry.heldUntilMs !== undefined && entry.heldUntilMs > this.now() && entry.holdWhy === why;
    const until = entry.lastHeardMs + holdMs;
    if (until >= (entry.heldUntilMs ?? 0)) {
      entry.heldUntilMs = until;
      entry.holdWhy = why;
    }
    if (holding) return;
    const what = why === 'restarting' ? 'is restarting' : 'is starting slots';
    this.log.info({ machine, holdMs, why }, `machine ${machine}'s agent ${what}: its lease is held ${holdMs} ms longer, and the machine is declared down only after that`);
  }

  /**
   * The partners' views, copied into records kept per machine: holding on to each heartbeat's decoded objects until
   * the next one let a thousand agents' heartbeats outlive the young generation, to be collected as old garbage.
   */
  private keepViews(machine: string, views: PartnerViews['views']): void {
    let pv = this.partnerViews.get(machine);
    if (!pv) {
      pv = { at: 0, views: [] };
      this.partnerViews.set(machine, pv);
    }
    pv.at = this.now();
    pv.views.length = Math.min(pv.views.length, views.length);
    views.forEach((v, i) => {
      const kept = pv.views[i];
      if (kept) {
        if (kept.machine !== v.machine) kept.machine = v.machine;
        kept.heard = v.heard;
        kept.lastHeardMsAgo = v.lastHeardMsAgo;
      } else {
        pv.views.push({ machine: v.machine, heard: v.heard, lastHeardMsAgo: v.lastHeardMsAgo });
      }
    });
  }

  tick(): void {
    for (const [machine, entry] of this.machines) this.evaluate(machine, entry);
  }

  private evaluate(machine: string, entry: Entry): void {
    const silenceMs = Math.round(this.now() - entry.lastHeardMs);
    // a hold is granted in whole milliseconds; the difference of two clock readings gives it back only to within a
    // rounding error (2999.9999999999964 ms once, in the machine.down reason an operator reads)
    const holdMs = Math.max(0, Math.round((entry.heldUntilMs ?? 0) - entry.lastHeardMs));
    const decision = decideLiveness({ state: entry.state, silenceMs, heard: entry.heard, everHeard: entry.everHeard, holdMs, holdWhy: entry.holdWhy }, this.config);
    if (!decision) return;
    const from = entry.state;
    entry.state = decision.to;
    let reason = decision.reason;
    let partners: Record<string, number | null> | undefined;
    if (decision.to === 'down') {
      // gone, or only cut from the coordinator? Its partners' last words say which.
      partners = this.partnersHearing(machine);
      const hearing = Object.entries(partners).filter(([, ago]) => ago !== null && ago < this.config.leaseMs).map(([m]) => m);
      const names = Object.keys(partners);
      reason +=
        names.length === 0
          ? '; it has no partner to ask'
          : hearing.length
            ? `; cut from coordinator: partner(s) ${hearing.join(', ')} still hear it`
            : `; machine gone: none of its partners (${names.join(', ')}) hears it`;
    }
    this.storage.machines.setState(machine, decision.to, reason, { rule: decision.rule, silenceMs, ...(partners ? { partners } : {}) });
    if (decision.to === 'down') {
      entry.via = undefined;
      this.onDown(machine);
    }
    const level = decision.to === 'up' ? 'info' : 'warn';
    this.log[level]({ machine, from, to: decision.to, rule: decision.rule }, `machine ${machine} is ${decision.to}: ${reason}`);
  }

  /** Per partner of `machine`: ms since it last heard `machine` (as of now), or null if it did not or says nothing fresh. */
  private partnersHearing(machine: string): Record<string, number | null> {
    const out: Record<string, number | null> = {};
    for (const partner of this.storage.machines.partnersOf(machine)) {
      const pv = this.partnerViews.get(partner);
      const view = pv?.views.find((v) => v.machine === machine);
      const fresh = pv && this.machines.get(partner)?.state === 'up' && this.now() - pv.at < this.config.leaseMs;
      out[partner] = fresh && view?.heard ? Math.round(view.lastHeardMsAgo + (this.now() - pv.at)) : null;
    }
    return out;
  }
}
