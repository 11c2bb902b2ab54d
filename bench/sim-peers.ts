// The partners' side of the simulated agents (packages/agent/src/peer/): every second each agent asks its partners
// whether they reach the coordinator. A partner that does cuts the asker's reconnect backoff short; one that does not
// (or reaches a coordinator still in its restart grace) promises, for one lease counted from the question's send
// time, not to accept a promotion against the asker (promiseFor decides, as in the agent). While every replica
// partner of an agent's masters holds a live promise, its masters serve on (the failsafe). Here the question is a
// function call; partners in the other simulated-agent process answer from what that process last said of them
// (every 200 ms, relayed by the bench): about as stale as an answer over the network.
import { FailsafeLedger, promiseFor } from '../packages/agent/src/peer/failsafe.js';
import { leaseMargin, monotonicMs } from '../packages/agent/src/lease/lease.js';
import type { SimAgent } from './sim-agent.js';

const ROUNDS_PER_SECOND = 10;

export class SimPeers {
  private readonly byIndex = new Map<number, SimAgent>();
  private readonly ledgers = new Map<SimAgent, FailsafeLedger>();
  private readonly failsafeUntil = new Map<SimAgent, number>();
  private tick = 0;
  /** Partners in the other process, as last heard: reaches the coordinator, and until when its grace runs (monotonic ms). */
  private readonly remote = new Map<number, { reachable: boolean; graceUntil: number | undefined }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly machines: number, private readonly leaseMs = 5000) {}

  add(index: number, agent: SimAgent): void {
    this.byIndex.set(index, agent);
    this.ledgers.set(agent, new FailsafeLedger(leaseMargin(this.leaseMs)));
  }

  /**
   * Each agent asks once a second, the agents spread over the second. The phases are counted by the clock, and a
   * late timer runs every phase that came due meanwhile: a real agent asks on its own machine's timer, which this
   * process's load must not slow down. (Seen: one phase per callback, whatever the delay, and callbacks 200–570 ms
   * late through a restart storm — a tenth of the agents then asked nothing for 3 s, their partners' last answers
   * were from before the coordinator died, and they counted as fenced with the failsafe.)
   */
  start(): void {
    const every = 1000 / ROUNDS_PER_SECOND;
    const began = performance.now();
    this.timer = setInterval(() => {
      const due = Math.floor((performance.now() - began) / every);
      // at most one full second of phases: each agent asks once, however late the timer
      const from = Math.max(this.tick, due - ROUNDS_PER_SECOND + 1);
      for (let t = from; t <= due; t++) {
        const phase = t % ROUNDS_PER_SECOND;
        for (const [index, agent] of this.byIndex) if (index % ROUNDS_PER_SECOND === phase) this.round(index, agent);
      }
      this.tick = Math.max(this.tick, due + 1);
    }, every);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /**
   * What this process's agents say now, for the other process: per agent -1 (does not reach the coordinator), 0
   * (reaches it) or the ms left of the grace of the coordinator it reaches.
   */
  reachability(): { first: number; states: number[] } {
    const indexes = [...this.byIndex.keys()];
    const now = monotonicMs();
    return {
      first: Math.min(...indexes),
      states: indexes.map((i) => {
        const a = this.byIndex.get(i)!;
        if (!a.coordinatorReachable()) return -1;
        const grace = a.coordinatorGraceUntil(now);
        return grace === undefined ? 0 : Math.floor(grace - now);
      }),
    };
  }

  /** What the other process said of its agents (up to 200 ms ago: a grace is counted as if it were said now less that). */
  heard(first: number, states: number[]): void {
    const now = monotonicMs();
    states.forEach((v, i) => this.remote.set(first + i, { reachable: v >= 0, graceUntil: v > 0 ? now + v - 200 : undefined }));
  }

  /** Until when the agent's masters may serve on promises alone (undefined: no failsafe). */
  failsafe(agent: SimAgent): number | undefined {
    return this.failsafeUntil.get(agent);
  }

  private round(index: number, agent: SimAgent): void {
    const sentAt = monotonicMs();
    const ledger = this.ledgers.get(agent)!;
    const ask = { holds: agent.holds(), promiseMs: this.leaseMs };
    for (const d of [1, 2, 3, 4, -1, -2, -3, -4]) {
      const p = (index + d + this.machines) % this.machines;
      const partner = this.byIndex.get(p);
      const view = partner ? { reachable: partner.coordinatorReachable(), graceUntil: partner.coordinatorGraceUntil(sentAt) } : this.remote.get(p);
      if (view === undefined) continue; // never heard of: no answer, no promise
      const promisedMs = promiseFor(ask, { ...view, maxMs: this.leaseMs }, sentAt);
      ledger.record(`m${p}`, { sentAt, reachable: view.reachable, promisedMs, askedMs: ask.promiseMs });
      if (view.reachable && !agent.coordinatorReachable()) agent.reconnectNow();
    }
    // the replicas of machine i's masters are on machines i+1…i+4 (bench/sessions-support clusterJson)
    const replicaPartners = [1, 2, 3, 4].map((d) => `m${(index + d) % this.machines}`);
    const until = ledger.deadline(replicaPartners, monotonicMs());
    if (until === undefined) this.failsafeUntil.delete(agent);
    else this.failsafeUntil.set(agent, until);
  }
}
