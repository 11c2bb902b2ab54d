// Simulated agents for bench/coordinator-sessions: each speaks the real Agent.Session protocol over its own gRPC
// connection (hello with 18 slot reports, heartbeats at the coordinator's interval) and times every heartbeat from
// send to the coordinator's acknowledgement, which is sent only after the heartbeat is committed to SQLite.
// Run as a child process: argv = coordinator, first machine index, count, slots per machine, run seconds.
import * as grpc from '@grpc/grpc-js';
import { loadContract, type AgentMessage, type CoordinatorMessage__Output, type SlotReport } from '@slotctl/shared';

const [target, firstArg, countArg, slotsArg, secondsArg, warmupArg] = process.argv.slice(2);
const first = Number(firstArg);
const count = Number(countArg);
const slotsPerMachine = Number(slotsArg);
const runMs = Number(secondsArg) * 1000;
const warmupMs = Number(warmupArg) * 1000;

const { Agent } = loadContract().slotctl.v1;
const latencies: number[] = [];
let acks = 0;
let errors = 0;
let measuring = false;
const clients: InstanceType<typeof Agent>[] = [];
const timers: NodeJS.Timeout[] = [];

function slotReports(machine: number): SlotReport[] {
  return Array.from({ length: slotsPerMachine }, (_, i) => ({
    slot: `b${machine}-${i}`,
    state: 'ABSENT' as const,
    role: 'REPLICA' as const,
    epochApplied: 1,
    lastError: '',
  }));
}

function startAgent(index: number): void {
  const machine = `m${index}`;
  // A channel of its own, as a real agent on its own host would have.
  const client = new Agent(target!, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  clients.push(client);
  const stream: grpc.ClientDuplexStream<AgentMessage, CoordinatorMessage__Output> = client.Session();
  const sentAt = new Map<number, number>();
  let seq = 0;
  stream.on('data', (message: CoordinatorMessage__Output) => {
    if (message.body === 'welcome') {
      const every = message.welcome!.heartbeatIntervalMs;
      // Spread the agents over the interval, as independent hosts would be.
      const start = setTimeout(() => {
        timers.push(
          setInterval(() => {
            seq++;
            sentAt.set(seq, performance.now());
            stream.write({ heartbeat: { seq } });
          }, every),
        );
      }, Math.random() * every);
      timers.push(start);
    } else if (message.body === 'ack') {
      const t = sentAt.get(message.ack!.seq);
      sentAt.delete(message.ack!.seq);
      if (t !== undefined && measuring) {
        latencies.push(performance.now() - t);
        acks++;
      }
    } else if (message.body === 'desired') {
      stream.write({ applied: { version: message.desired!.version, slots: [] } });
    }
  });
  stream.on('error', () => errors++);
  stream.write({ hello: { machine, agentVersion: 'bench', instanceId: `bench-${index}`, slots: slotReports(index) } });
}

for (let i = 0; i < count; i++) {
  startAgent(first + i);
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
}
process.send?.({ type: 'connected' });
await new Promise((r) => setTimeout(r, warmupMs));
measuring = true;
process.send?.({ type: 'measuring' });
await new Promise((r) => setTimeout(r, runMs));
measuring = false;
process.send?.({ type: 'done', latencies, acks, errors });
for (const t of timers) clearInterval(t);
for (const c of clients) c.close();
setTimeout(() => process.exit(0), 200);
