// bench/slots: real Cyrus slots on this host.
//   cold start to ready (goal < 0.5 s) and graceful stop (goal < 2 s) of one slot, through the agent's supervisor;
//   replay throughput for 100 / 1,000 / 10,000 messages of backlog (messages/s and logs/s);
//   backlog report latency from an LMTP delivery to the coordinator seeing it (goal < 200 ms);
//   agent RSS with 18 slots (goal < 80 MB, Cyrus processes excluded).
//
//   npm run bench:slots -- [--replay 100,1000,10000] [--starts 5]
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@slotctl/shared';
import { SlotSupervisor } from '../packages/agent/src/slot/supervisor.js';
import { slotLayout } from '../packages/agent/src/slot/layout.js';
import { LoopbackVipDriver } from '../packages/agent/src/vip/loopback.js';
import { replaySyncLogs } from '../packages/agent/src/sync/replay.js';
import { benchArg, rssMb } from './common.js';
import { LocalCluster, ROOT, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { deliver } from '../test/support/mail.js';

const replaySizes = benchArg('replay', '100,1000,10000').split(',').map(Number);
const starts = Number(benchArg('starts', '5'));
const root = join(ROOT, '.bench', 'slots');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true, mode: 0o755 });
const log = createLogger('bench', { level: 'warn' });
const stopSyslogd = stopSyslogdStartedAfterNow();
const round = (x: number) => Math.round(x * 10) / 10;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function startStop(): Promise<{ coldStartMs: number[]; stopMs: number[] }> {
  const rt = {
    ports: { imap: 1143, lmtp: 2003, sync: 2005 },
    auth: { mode: 'test' as const, syncUser: 'admin', syncPassword: 'x' },
    vip: new LoopbackVipDriver(),
    log,
    onChange: () => undefined,
    onEvent: () => undefined,
    disks: () => [],
    crashLimit: 5,
    crashWindowMs: 60_000,
    stopTimeoutMs: 10_000,
    readyTimeoutMs: 15_000,
    mayServeMaster: () => true, // replicas only: no lease involved
  };
  const coldStartMs: number[] = [];
  const stopMs: number[] = [];
  for (let i = 0; i < starts; i++) {
    const dirRoot = join(root, `start-${i}`);
    const sup = new SlotSupervisor(`bench-start-${i}`, rt);
    const desired = {
      store: `bs${i}`, role: 'REPLICA' as const, epoch: 1, slotIp: `127.50.0.${i + 1}`, serviceIp: `127.50.1.${i + 1}`,
      peerSlot: '', peerIp: '', dataPath: join(dirRoot, 'data'), metaPath: join(dirRoot, 'meta'),
    };
    let t = performance.now();
    await sup.converge(desired, true);
    if (sup.lifecycle !== 'serving') throw new Error(`slot did not start: ${sup.reason} ${sup.lastError}`);
    coldStartMs.push(performance.now() - t);
    t = performance.now();
    await sup.stop('bench');
    stopMs.push(performance.now() - t);
  }
  return { coldStartMs, stopMs };
}

/** One cluster of two machines with 18 slots each: 18 stores, masters alternating. */
function clusterYaml(): string {
  const lines = ['machines:', '  - { name: m1, address: 127.51.0.1 }', '  - { name: m2, address: 127.51.0.2 }', 'stores:'];
  for (let s = 1; s <= 18; s++) {
    const name = `b${String(s).padStart(2, '0')}`;
    lines.push(`  - name: ${name}`, `    service_ip: 127.51.3.${s}`, `    master: ${s % 2 ? 'm1' : 'm2'}`, '    slots:');
    for (const [m, n] of [['m1', 1], ['m2', 2]] as const) {
      lines.push(`      - { machine: ${m}, ip: 127.51.${n}.${s}, data_path: ${root}/srv/${m}/${name}/data, meta_path: ${root}/srv/${m}/${name}/meta }`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const out: Record<string, unknown> = {
  benchmark: 'slots',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:slots -- --replay ${replaySizes.join(',')} --starts ${starts}`,
};

try {
  console.log(`slots: cold start and graceful stop of one slot, ${starts} times…`);
  const ss = await startStop();
  out.coldStartMs = { median: round(median(ss.coldStartMs)), max: round(Math.max(...ss.coldStartMs)), all: ss.coldStartMs.map(round), goal: 500 };
  out.gracefulStopMs = { median: round(median(ss.stopMs)), max: round(Math.max(...ss.stopMs)), all: ss.stopMs.map(round), goal: 2000 };
  console.log(`  cold start to ready: median ${round(median(ss.coldStartMs))} ms (max ${round(Math.max(...ss.coldStartMs))}); graceful stop: median ${round(median(ss.stopMs))} ms (max ${round(Math.max(...ss.stopMs))})`);

  const cluster = new LocalCluster({ dir: join(root, 'cluster'), logLevel: 'warn' });
  try {
    await cluster.startCoordinator();
    const applied = await cluster.slotctl(['cluster', 'apply', '-'], clusterYaml());
    if (applied.exitCode !== 0) throw new Error(applied.stdout + applied.stderr);
    cluster.startAgent('m1');
    cluster.startAgent('m2');
    await waitFor('all 36 slots serving', async () => {
      const slots = (await cluster.client().listSlots({ machine: '' })).slots;
      return slots.length === 36 && slots.every((s) => s.state === 'SERVING') ? true : undefined;
    }, 120_000, 200);
    await new Promise((r) => setTimeout(r, 5000));
    const agentRss = [rssMb(cluster.agents.get('m1')!.pid), rssMb(cluster.agents.get('m2')!.pid)];
    out.agentRssMb = { slotsPerAgent: 18, m1: round(agentRss[0]!), m2: round(agentRss[1]!), goal: 80 };
    console.log(`  agent RSS with 18 slots (Cyrus excluded): ${agentRss.map(round).join(' MB, ')} MB`);

    // Backlog report latency: replica of b01 stopped so the backlog stays; deliver one message at a time and time
    // until the coordinator's view shows the new byte count.
    const slot = async (name: string) => (await cluster.client().listSlots({ machine: '' })).slots.find((s) => s.name === name)!;
    await cluster.slotctl(['slot', 'stop', 'b01-m2']);
    await waitFor('b01-m2 stopped', async () => ((await slot('b01-m2')).state === 'STOPPED' ? true : undefined), 30_000);
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const before = Number((await slot('b01-m1')).backlog?.bytes ?? 0);
      await deliver('127.51.3.1', 2003, [{ user: `lat${i % 3}`, subject: `latency ${i}` }]);
      const t = performance.now();
      await waitFor('the backlog to grow', async () => (Number((await slot('b01-m1')).backlog?.bytes ?? 0) > before ? true : undefined), 5000, 2);
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 100));
    }
    out.backlogReportLatencyMs = { median: round(median(latencies)), max: round(Math.max(...latencies)), samples: latencies.length, goal: 200, note: 'from the LMTP 250 to the coordinator reporting the grown backlog (polled every 2 ms)' };
    console.log(`  backlog report latency: median ${round(median(latencies))} ms, max ${round(Math.max(...latencies))} ms`);
    await cluster.slotctl(['slot', 'start', 'b01-m2']);

    // Replay throughput: replica stopped, N messages delivered, master stopped, replica started, replay timed.
    const replay: unknown[] = [];
    const masterStops: number[] = [];
    for (const [k, n] of replaySizes.entries()) {
      const store = `b${String(k + 2).padStart(2, '0')}`;
      const master = `${store}-${(k + 2) % 2 ? 'm1' : 'm2'}`;
      const replica = `${store}-${(k + 2) % 2 ? 'm2' : 'm1'}`;
      const masterMachine = (k + 2) % 2 ? 'm1' : 'm2';
      await cluster.slotctl(['slot', 'stop', replica]);
      await waitFor(`${replica} stopped`, async () => ((await slot(replica)).state === 'STOPPED' ? true : undefined), 30_000);
      const users = Math.max(1, Math.min(50, Math.round(n / 100)));
      const msgs = Array.from({ length: n }, (_, i) => ({ user: `u${i % users}`, subject: `replay ${i}` }));
      const tDeliver = performance.now();
      await deliver(`127.51.3.${k + 2}`, 2003, msgs);
      const deliverS = (performance.now() - tDeliver) / 1000;
      const tStop = performance.now();
      await cluster.client().setSlotRun({ slot: master, run: false, reason: 'bench' });
      await waitFor(`${master} stopped`, async () => ((await slot(master)).state === 'STOPPED' ? true : undefined), 30_000, 5);
      masterStops.push(performance.now() - tStop);
      await cluster.slotctl(['slot', 'start', replica]);
      await waitFor(`${replica} serving`, async () => ((await slot(replica)).state === 'SERVING' ? true : undefined), 30_000);
      const meta = join(root, 'srv', masterMachine, store, 'meta');
      const syncDir = join(meta, 'conf', 'sync');
      const files = readdirSync(syncDir).filter((f) => f.startsWith('log'));
      const replicaIp = `127.51.${masterMachine === 'm1' ? 2 : 1}.${k + 2}`;
      const result = await replaySyncLogs(slotLayout(join(root, 'srv', masterMachine, store, 'data'), meta), { ip: replicaIp, port: 2005 }, log, 600_000);
      if (!result.ok) throw new Error(`replay failed: ${result.error}`);
      const s = result.ms / 1000;
      replay.push({ messages: n, mailboxes: users, logFiles: files.length, seconds: round(s * 1000) / 1000, messagesPerSecond: Math.round(n / s), logsPerSecond: round(files.length / s), deliverySeconds: round(deliverS) });
      console.log(`  replay of ${n} messages (${users} mailboxes, ${files.length} log file(s)): ${round(result.ms)} ms = ${Math.round(n / s)} messages/s; delivering them took ${round(deliverS)} s`);
      await cluster.slotctl(['slot', 'start', master]);
    }
    out.replay = replay;
    out.masterStopMs = { all: masterStops.map(round), goal: 2000, note: 'a master with its rolling sync_client and a backlog, from the Admin call to the coordinator seeing STOPPED' };
    console.log(`  graceful stop of a master (end to end through the coordinator): ${masterStops.map(round).join(', ')} ms`);
  } finally {
    await cluster.stopAll();
  }
} finally {
  stopSyslogd();
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'slots.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log('slots: written to bench/results/slots.json');
