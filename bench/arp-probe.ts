// bench/arp-probe: how fast a real holder of an address answers the duplicate-address probe (arping -D) on a veth
// link between two network namespaces — the figure the agent's --arp-probe window (25 ms by default) is a margin on — and how
// long arping takes to start (the part of the window the probe no longer counts: vip/probe.ts counts from arping's
// header line). --busy N runs N busy loops beside it (a loaded host). Writes bench/results/arp-probe.json.
//
//   npm run bench:arp -- [--runs 500] [--busy 2]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { DEFAULT_ARP_PROBE_MS, probeAddress } from '../packages/agent/src/vip/probe.js';
import { NETNS_PREFIX } from '../test/cluster/netns-cleanup.js';
import { ROOT } from '../tools/local-cluster.js';
import { benchArg, takeClusterLock } from './common.js';

const runs = Number(benchArg('runs', '500'));
const busyLoops = Number(benchArg('busy', '0'));
const nsProbe = `${NETNS_PREFIX}arp-p`;
const nsOwner = `${NETNS_PREFIX}arp-o`;
const OWNED = '10.77.0.2';
const FREE = '10.77.0.9';

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round = (x: number) => Math.round(x * 1000) / 1000;
const stats = (xs: number[]) => ({ p50: round(percentile(xs, 50)), p99: round(percentile(xs, 99)), max: round(Math.max(...xs)), runs: xs.length });

const ip = (...args: string[]) => execa('ip', args);
const release = await takeClusterLock((l) => console.log(l));
const busy: ResultPromise[] = [];
const out: Record<string, unknown> = {
  benchmark: 'arp-probe',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:arp -- --runs ${runs}${busyLoops ? ` --busy ${busyLoops}` : ''}`,
};
try {
  for (const ns of [nsProbe, nsOwner]) await execa('ip', ['netns', 'del', ns], { reject: false });
  await ip('netns', 'add', nsProbe);
  await ip('netns', 'add', nsOwner);
  await ip('-n', nsProbe, 'link', 'add', 'arp0', 'type', 'veth', 'peer', 'name', 'arp1', 'netns', nsOwner);
  await ip('-n', nsProbe, 'link', 'set', 'arp0', 'up');
  await ip('-n', nsOwner, 'link', 'set', 'arp1', 'up');
  await ip('-n', nsOwner, 'addr', 'add', `${OWNED}/24`, 'dev', 'arp1');
  for (let i = 0; i < busyLoops; i++) busy.push(execa('sh', ['-c', 'while :; do :; done'], { reject: false }));
  const command = ['ip', 'netns', 'exec', nsProbe, 'stdbuf', '-oL', 'arping'];
  const reply: number[] = [];
  const spawnTaken: number[] = [];
  const spawnFree: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await probeAddress({ iface: 'arp0', ip: OWNED, probeMs: 1000, command });
    if (r.free) throw new Error(`run ${i + 1}: ${OWNED} is held in ${nsOwner} but nobody answered within 1 s`);
    reply.push(r.replyMs);
    spawnTaken.push(r.spawnMs);
    // and a free address: the whole window is listened to (a tenth of the runs: each costs the window)
    if (i % 10 === 0) {
      const f = await probeAddress({ iface: 'arp0', ip: FREE, probeMs: 100, command });
      if (!f.free) throw new Error(`run ${i + 1}: ${FREE} is held by nobody, yet ${f.owner} answered`);
      spawnFree.push(f.spawnMs);
    }
  }
  out.headerToReplyMs = stats(reply);
  out.spawnToHeaderMs = stats([...spawnTaken, ...spawnFree]);
  out.busyLoops = busyLoops;
  out.notes = [
    'headerToReply: from arping\'s header line (printed as it starts, read unbuffered through stdbuf -oL) to the owner\'s reply line, in the probing namespace',
    'spawnToHeader: from the spawn of `ip netns exec … stdbuf -oL arping` to its header (the agent spawns stdbuf directly: one exec fewer)',
    `the agent listens --arp-probe (${DEFAULT_ARP_PROBE_MS} ms by default) from the header on: ${round(DEFAULT_ARP_PROBE_MS / Math.max(percentile(reply, 99), 0.001))} times the p99 answer here`,
  ];
  console.log(`arp-probe: header→reply ${JSON.stringify(out.headerToReplyMs)}, spawn→header ${JSON.stringify(out.spawnToHeaderMs)}${busyLoops ? ` beside ${busyLoops} busy loops` : ''}`);
} finally {
  for (const b of busy) b.kill('SIGKILL');
  await Promise.allSettled(busy);
  for (const ns of [nsProbe, nsOwner]) await execa('ip', ['netns', 'del', ns], { reject: false });
  release();
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const name = busyLoops ? `arp-probe-busy${busyLoops}.json` : 'arp-probe.json';
writeFileSync(join(ROOT, 'bench', 'results', name), `${JSON.stringify(out, null, 2)}\n`);
console.log(`written to bench/results/${name}`);
