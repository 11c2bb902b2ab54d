// bench/relay: a machine cut from the coordinator alone (its partners still reach both) for --seconds under the mail
// load: its heartbeats travel through a partner (Agent.Relay), so nothing may be fenced or failed over, and mail must
// reach every store throughout. Sampled every second: the machine's state and the partner relaying; afterwards:
// failovers, machine.down events, lease expiries in the cut agent's log, acknowledged deliveries per store during
// the cut. Writes bench/results/relay.json.
//
//   npm run bench:relay -- [--seconds 60] [--load 25] [--lease 5s] [--interval 1s]
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseDuration } from '@slotctl/shared';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { readLoadRecord } from '../test/support/load-record.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, writeResult, type StoreJson } from './common.js';

const seconds = Number(benchArg('seconds', '60'));
const loadRate = Number(benchArg('load', '25'));
const lease = benchArg('lease', '5s');
const interval = benchArg('interval', '1s');
parseDuration(lease, '--lease');
const victim = 'm3';
const dir = tempDir('relay-bench');
const cluster = new NetnsCluster({ dir, id: 'y', storePrefix: 'y', machines: 5, slotsPerMachine: 8, coordinatorArgs: ['--lease', lease, '--heartbeat-interval', interval], log: (l) => console.log(`  ${l}`) });
const stopSyslogd = stopSyslogdStartedAfterNow();

interface MachineJson {
  name: string;
  state: string;
  connected: boolean;
  relayedVia: string;
}

const out: Record<string, unknown> = {
  benchmark: 'relay',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:relay -- --seconds ${seconds} --load ${loadRate} --lease ${lease} --interval ${interval}`,
  load: loadRate ? { messagesPerSecond: loadRate, to: 'every store, LMTP on its service IP, from the client namespace' } : 'none',
};
let load: ReturnType<typeof cluster.startLoad> | undefined;
try {
  console.log(`relay: 5 machines × 8 slots; ${victim} cut from the coordinator for ${seconds} s under ${loadRate} msg/s…`);
  await cluster.start();
  const stores = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
  load = loadRate ? cluster.startLoad('relay-load', stores.map((s) => ({ store: s.name, host: s.serviceIp, users: ['amy', 'bob'] })), loadRate) : undefined;
  await new Promise((r) => setTimeout(r, 5000));
  const cutAt = Date.now();
  await cluster.cut(victim, 'co');
  const samples: { atMs: number; state: string; connected: boolean; relayedVia: string }[] = [];
  try {
    while (Date.now() - cutAt < seconds * 1000) {
      const m = (await cluster.slotctlJson<MachineJson[]>(['machine', 'list'])).find((x) => x.name === victim)!;
      samples.push({ atMs: Date.now() - cutAt, state: m.state, connected: m.connected, relayedVia: m.relayedVia });
      await new Promise((r) => setTimeout(r, 1000 - ((Date.now() - cutAt) % 1000)));
    }
  } finally {
    await cluster.heal();
  }
  const healedAt = Date.now();
  await new Promise((r) => setTimeout(r, 10_000));
  if (load) out.loadSummary = await load.stop();
  const record = load ? readLoadRecord(load.out) : undefined;
  load = undefined;
  const since = new Date(cutAt - 1000).toISOString();
  const events = await cluster.slotctlJson<{ kind: string; machine: string; at: string }[]>(['events', '--since', since, '--limit', '10000']);
  const ops = (await cluster.slotctlJson<{ kind: string; createdAt: string }[]>(['operations', 'list', '--all', '--limit', '1000'])).filter((o) => o.kind === 'failover' && Date.parse(o.createdAt) >= cutAt);
  const said = readFileSync(cluster.agentLogFile(victim), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { time: string; msg: string })
    .filter((l) => Date.parse(l.time) >= cutAt);
  // every store acknowledged mail during the cut (the cut machine's masters above all)
  const during = new Map<string, number>();
  for (const a of record?.acks ?? []) {
    const at = Date.parse((a as unknown as { at: string }).at);
    if (at >= cutAt && at <= healedAt) during.set(a.store, (during.get(a.store) ?? 0) + 1);
  }
  const victimStores = stores.filter((s) => s.master.machine === victim).map((s) => s.name);
  out.cut = { machine: victim, seconds, lease, interval };
  out.samples = { total: samples.length, up: samples.filter((s) => s.state === 'up').length, relayed: samples.filter((s) => s.relayedVia).length, notUp: samples.filter((s) => s.state !== 'up') };
  out.relayedVia = [...new Set(samples.map((s) => s.relayedVia).filter(Boolean))];
  out.fences = said.filter((l) => l.msg.startsWith('lease expired')).length;
  out.failovers = ops.length;
  out.machineDownEvents = events.filter((e) => e.kind === 'machine.down').length;
  out.firstRelayedRenewal = said.find((l) => l.msg.startsWith('lease renewed through partner'))?.time ?? null;
  out.deliveriesDuringCut = { stores: during.size, of: stores.length, fewestPerStore: Math.min(...stores.map((s) => during.get(s.name) ?? 0)), cutMachineMasters: Object.fromEntries(victimStores.map((s) => [s, during.get(s) ?? 0])) };
  out.passed = out.fences === 0 && out.failovers === 0 && out.machineDownEvents === 0 && during.size === stores.length && (out.samples as { up: number }).up === samples.length;
  console.log(`relay: ${JSON.stringify({ samples: out.samples, relayedVia: out.relayedVia, fences: out.fences, failovers: out.failovers, machineDown: out.machineDownEvents, deliveries: out.deliveriesDuringCut, passed: out.passed })}`);
} finally {
  await load?.stop().catch(() => undefined);
  await cluster.destroy();
  removeDir(dir);
  stopSyslogd();
}
const written = writeResult('relay', out);
console.log(`written to ${written}`);
if (!out.passed) process.exitCode = 1;
