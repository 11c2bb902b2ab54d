// The partners' side of the simulated agents (packages/agent/src/peer/): every second each agent asks its partners
// whether they reach the coordinator. A partner that does cuts the asker's reconnect backoff short; one that does not
// promises, for one lease counted from the question's send time, not to accept a promotion against the asker. While
// every replica partner of an agent's masters holds a live promise, its masters serve on (the failsafe). Here the
// question is a function call; partners in the other simulated-agent process answer from what that process last
// said of them (every 200 ms, relayed by the bench): about as stale as an answer over the network.
import { FailsafeLedger } from '../packages/agent/src/peer/failsafe.js';
import { leaseMargin, monotonicMs } from '../packages/agent/src/lease/lease.js';
import type { SimAgent } from './sim-agent.js';

const ROUNDS_PER_SECOND = 10;

export class SimPeers {
  private readonly byIndex = new Map<number, SimAgent>();
  private readonly ledgers = new Map<SimAgent, FailsafeLedger>();
  private readonly failsafeUntil = new Map<SimAgent, number>();
  private tick = 0;
  /** Partners in the other process: reaches the coordinator or not, as last heard. */
  private readonly remote = new Map<number, boolean>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly machines: number, private readonly leaseMs = 5000) {}

  add(index: number, agent: SimAgent): void {
    this.byIndex.set(index, agent);
    this.ledgers.set(agent, new FailsafeLedger(leaseMargin(this.leaseMs)));
  }

  /** Each agent asks once a second, the agents spread over the second. */
  start(): void {
    this.timer = setInterval(() => {
      const phase = this.tick++ % ROUNDS_PER_SECOND;
      for (const [index, agent] of this.byIndex) if (index % ROUNDS_PER_SECOND === phase) this.round(index, agent);
    }, 1000 / ROUNDS_PER_SECOND);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** What this process's agents say now, for the other process: one character per agent, '1' reaches. */
  reachability(): { first: number; bits: string } {
    const indexes = [...this.byIndex.keys()];
    const first = Math.min(...indexes);
    return { first, bits: indexes.map((i) => (this.byIndex.get(i)!.coordinatorReachable() ? '1' : '0')).join('') };
  }

  /** What the other process said of its agents. */
  heard(first: number, bits: string): void {
    for (let i = 0; i < bits.length; i++) this.remote.set(first + i, bits[i] === '1');
  }

  /** Until when the agent's masters may serve on promises alone (undefined: no failsafe). */
  failsafe(agent: SimAgent): number | undefined {
    return this.failsafeUntil.get(agent);
  }

  private round(index: number, agent: SimAgent): void {
    const sentAt = monotonicMs();
    const ledger = this.ledgers.get(agent)!;
    for (const d of [1, 2, 3, 4, -1, -2, -3, -4]) {
      const p = (index + d + this.machines) % this.machines;
      const partner = this.byIndex.get(p);
      const reaches = partner ? partner.coordinatorReachable() : this.remote.get(p);
      if (reaches === undefined) continue; // never heard of: no answer, no promise
      const partnerName = `m${p}`;
      if (reaches) {
        if (!agent.coordinatorReachable()) agent.reconnectNow();
      } else {
        ledger.record(partnerName, { sentAt, reachable: false, promisedMs: this.leaseMs });
      }
    }
    // the replicas of machine i's masters are on machines i+1…i+4 (bench/sessions-support clusterJson)
    const replicaPartners = [1, 2, 3, 4].map((d) => `m${(index + d) % this.machines}`);
    const until = ledger.deadline(replicaPartners, monotonicMs());
    if (until === undefined) this.failsafeUntil.delete(agent);
    else this.failsafeUntil.set(agent, until);
  }
}
