// Simulated agents for bench/coordinator-sessions, run as a child process: `count` SimAgents (machines first …
// first+count−1), each with its own gRPC connection. The parent steers them over IPC:
//   → {type:'measure', on}  heartbeat latencies recorded while on; off answers {type:'measured', latencies}
//   → {type:'mark', at}     the coordinator (with several: the leader) is about to be killed at wall-clock `at`:
//                           answer {type:'back'} once every agent has an acknowledgement on a session opened after it
//   → {type:'stop'}         answer {type:'done'} with the lease figures, then exit
//   ↔ {type:'reach'}        every 200 ms, which agents reach the coordinator (the bench passes it to the others)
//   ← {type:'acked', at}    once every agent has had its first acknowledgement (at = the last one, wall clock)
// argv[2] is a JSON SimConfig.
import { existsSync } from 'node:fs';
import { setPriority } from 'node:os';
import { tlsPaths } from '@slotctl/shared';
import { issueToDirectory } from '@slotctl/shared/pki';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { monotonicMs } from '../packages/agent/src/lease/lease.js';
import { SimAgent, type SimShared } from './sim-agent.js';
import { SimPeers } from './sim-peers.js';

export interface SimConfig {
  /** The coordinator addresses, in order (several: one leads, the agents find it). */
  coordinators: string[];
  first: number;
  count: number;
  machines: number;
  slotsPerMachine: number;
  reportEveryMs: number;
  waitForReady: boolean;
  /** The cluster's PKI directory: each agent has its machine's certificate (issued here if missing); none: insecure. */
  pkiDir?: string;
}

export type ToSim = { type: 'measure'; on: boolean } | { type: 'mark'; at: number } | { type: 'stop' } | { type: 'reach'; first: number; states: number[] };

export type FromSim =
  | { type: 'acked'; at: number }
  | { type: 'reach'; first: number; states: number[] }
  | { type: 'measured'; latencies: number[]; loopDelayMs: { p50: number; p99: number; max: number } }
  | { type: 'back'; at: number; backMs: number[]; brokenMs: number[]; welcomedMs: number[]; attempts: number[]; reconnectsNow: number; reconnectsNowFailedFast: number; notLeader: number[]; terms: number[] }
  | {
      type: 'done';
      fences: number;
      fencesBeforeMark: number;
      fencesWithFailsafe: number;
      fencesWithFailsafeBeforeMark: number;
      fencedMachines: string[];
      worstOverdueMs: number;
      renewals: number;
      sessions: number;
      streamErrors: number;
      /** Sessions a follower refused, and sessions ended for a deposed leader's term. */
      notLeader: number;
      staleTerms: number;
    };

const config = JSON.parse(process.argv[2]!) as SimConfig;
// ahead of the neighbours' work (busy loops, other tests at 0) but behind the coordinator (-10): real agents do not
// share the coordinator's CPU, and at its priority they took it from it while a thousand of them reconnected
try {
  setPriority(-5);
} catch {
  // not allowed: at the usual priority
}
let measuring = false;
// this process's own event-loop delay while measuring: a heartbeat's latency as measured here includes it, and a real
// agent (alone on its host) would not have it
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
const shared: SimShared = {
  coordinators: config.coordinators,
  machines: config.machines,
  slotsPerMachine: config.slotsPerMachine,
  reportEveryMs: config.reportEveryMs,
  waitForReady: config.waitForReady,
  pkiDir: config.pkiDir,
  measuring: () => measuring,
  latencies: [],
  errors: { count: 0 },
};
const send = (m: FromSim) => process.send?.(m);
const agents: SimAgent[] = [];
let markAt = 0;
let ackedSent = false;
let fencesBeforeMark = 0;
let fencesWithFailsafeBeforeMark = 0;
const peers = new SimPeers(config.machines);
let ticks = 0;
let reachTimer: NodeJS.Timeout | undefined;

// the fence's view: every 50 ms (the real fence reads its file every 100 ms)
const watcher = setInterval(() => {
  const now = monotonicMs();
  const renewNow = ticks++ % 5 === 0; // every 250 ms, as the agent's lease thread
  for (const a of agents) {
    a.watch(now, peers.failsafe(a));
    if (renewNow) a.renewIfOverdue();
  }
  if (!ackedSent && agents.length === config.count && agents.every((a) => a.firstAckAt)) {
    ackedSent = true;
    send({ type: 'acked', at: Math.max(...agents.map((a) => a.firstAckAt)) });
  }
  if (markAt && agents.every((a) => a.backAt)) {
    send({
      type: 'back',
      at: Math.max(...agents.map((a) => a.backAt)),
      backMs: agents.map((a) => a.backAt - markAt),
      brokenMs: agents.map((a) => a.restart.brokenMs),
      welcomedMs: agents.map((a) => a.restart.welcomedMs),
      attempts: agents.map((a) => a.restart.attempts),
      reconnectsNow: agents.reduce((n, a) => n + a.restart.now, 0),
      reconnectsNowFailedFast: agents.reduce((n, a) => n + a.restart.nowFailedFast, 0),
      notLeader: agents.map((a) => a.restart.notLeader),
      terms: [...new Set(agents.map((a) => a.restart.term))],
    });
    markAt = 0;
  }
}, 50);

// the bench went away (killed): so do the agents
process.on('disconnect', () => process.exit(0));

process.on('message', (m: ToSim) => {
  if (m.type === 'reach') {
    peers.heard(m.first, m.states);
  } else if (m.type === 'measure') {
    measuring = m.on;
    if (m.on) {
      shared.latencies.length = 0;
      loopDelay.reset();
      loopDelay.enable();
    } else {
      loopDelay.disable();
      const ms = (ns: number) => Math.round(ns / 1e4) / 100;
      send({ type: 'measured', latencies: shared.latencies.splice(0), loopDelayMs: { p50: ms(loopDelay.percentile(50)), p99: ms(loopDelay.percentile(99)), max: ms(loopDelay.max) } });
    }
  } else if (m.type === 'mark') {
    markAt = m.at;
    fencesBeforeMark = agents.reduce((n, a) => n + a.fences, 0);
    fencesWithFailsafeBeforeMark = agents.reduce((n, a) => n + a.fencesWithFailsafe, 0);
    for (const a of agents) a.mark(m.at);
  } else if (m.type === 'stop') {
    clearInterval(watcher);
    clearInterval(reachTimer);
    peers.stop();
    const fenced = agents.filter((a) => a.fences > 0);
    send({
      type: 'done',
      fences: fenced.reduce((n, a) => n + a.fences, 0),
      fencesBeforeMark,
      fencesWithFailsafe: agents.reduce((n, a) => n + a.fencesWithFailsafe, 0),
      fencesWithFailsafeBeforeMark,
      fencedMachines: fenced.slice(0, 20).map((a) => a.machine),
      worstOverdueMs: Math.round(Math.max(0, ...agents.map((a) => a.worstOverdueMs))),
      renewals: agents.reduce((n, a) => n + a.renewals, 0),
      sessions: agents.reduce((n, a) => n + a.sessions, 0),
      streamErrors: shared.errors.count,
      notLeader: agents.reduce((n, a) => n + a.notLeader, 0),
      staleTerms: agents.reduce((n, a) => n + a.staleTerms, 0),
    });
    for (const a of agents) a.stop();
    setTimeout(() => process.exit(0), 200);
  }
});

// every agent's certificate, before any starts (~2 ms each; a real agent's is made when its host is set up)
if (config.pkiDir) {
  for (let i = 0; i < config.count; i++) {
    const id = { role: 'agent', name: `m${config.first + i}` } as const;
    if (!existsSync(tlsPaths(config.pkiDir, id).cert)) await issueToDirectory(config.pkiDir, id);
  }
}

// agents start 50 at a time, 20 ms apart (a thousand within half a second, as hosts booting together would)
for (let i = 0; i < config.count; i++) {
  const agent = new SimAgent(config.first + i, shared);
  agents.push(agent);
  peers.add(config.first + i, agent);
  agent.start();
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
}
peers.start();
// what our agents say of the coordinator, for the partners in the other process (relayed by the bench)
reachTimer = setInterval(() => send({ type: 'reach', ...peers.reachability() }), 200);
