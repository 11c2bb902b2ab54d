// Keeps the last heartbeat of each machine on a monotonic clock and applies the liveness rules on a timer.
// A coordinator that has just started counts silence from its own start, which is the grace period agents get
// to reconnect.
import type { Logger } from '@slotctl/shared';
import type { MachineState, Repository } from '../db/repository.js';
import { decideLiveness, type LivenessConfig } from './rules.js';

interface Entry {
  state: MachineState;
  lastHeardMs: number;
  heard: boolean;
}

export class LivenessTracker {
  private readonly machines = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly config: LivenessConfig,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(tickMs = Math.max(20, Math.min(250, Math.floor(this.config.heartbeatIntervalMs / 4)))): void {
    this.reload();
    this.timer = setInterval(() => this.tick(), tickMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Picks up machines added or removed by a cluster apply. */
  reload(): void {
    const seen = new Set<string>();
    for (const row of this.repo.listMachines()) {
      seen.add(row.name);
      if (!this.machines.has(row.name)) this.machines.set(row.name, { state: row.state, lastHeardMs: this.now(), heard: false });
    }
    for (const name of this.machines.keys()) if (!seen.has(name)) this.machines.delete(name);
  }

  heard(machine: string): void {
    const entry = this.machines.get(machine);
    if (!entry) return;
    entry.lastHeardMs = this.now();
    entry.heard = true;
    if (entry.state !== 'up') this.evaluate(machine, entry);
  }

  tick(): void {
    for (const [machine, entry] of this.machines) this.evaluate(machine, entry);
  }

  private evaluate(machine: string, entry: Entry): void {
    const silenceMs = Math.round(this.now() - entry.lastHeardMs);
    const decision = decideLiveness({ state: entry.state, silenceMs, heard: entry.heard }, this.config);
    if (!decision) return;
    const from = entry.state;
    entry.state = decision.to;
    this.repo.setMachineState(machine, decision.to, decision.reason, { rule: decision.rule, silenceMs });
    const level = decision.to === 'up' ? 'info' : 'warn';
    this.log[level]({ machine, from, to: decision.to, rule: decision.rule }, `machine ${machine} is ${decision.to}: ${decision.reason}`);
  }
}
