// bench/netns: the namespace cluster of 5 machines × 4 slots — bring-up time (goal < 20 s) and teardown time — and
// how long a service IP move takes from the old master releasing it to the client's first IMAP greeting from the
// new machine (goal < 1 s). Writes bench/results/netns.json.
//
//   npm run bench:netns -- [--machines 5] [--slots 4] [--moves 3]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { NetnsCluster } from '../test/cluster/netns.js';
import { removeDir, tempDir } from '../test/support/fixtures.js';
import { ROOT, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { benchArg, startImapProbe, type StoreJson } from './common.js';

const machines = Number(benchArg('machines', '5'));
const slots = Number(benchArg('slots', '4'));
const moves = Number(benchArg('moves', '3'));
const dir = tempDir('netns-bench');
const cluster = new NetnsCluster({ dir, id: 'b', machines, slotsPerMachine: slots, log: (l) => console.log(`  ${l}`) });
const round = (x: number) => Math.round(x);
const stopSyslogd = stopSyslogdStartedAfterNow();

const out: Record<string, unknown> = {
  benchmark: 'netns',
  at: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
  command: `npm run bench:netns -- --machines ${machines} --slots ${slots} --moves ${moves}`,
};
try {
  console.log(`netns: ${machines} machines × ${slots} slots…`);
  out.bringUpMs = { value: round(await cluster.start()), goal: 20_000 };
  let file = cluster.clusterYaml();
  const moveMs: number[] = [];
  const outageMs: number[] = [];
  const boundMs: number[] = [];
  for (let i = 0; i < moves; i++) {
    const store = (await cluster.slotctlJson<StoreJson[]>(['store', 'list']))[i]!;
    const probe = await startImapProbe(cluster, store.serviceIp, 5, 20000);
    const released = Date.now();
    file = file.replace(new RegExp(`(name: ${store.name}\\n {4}service_ip: \\S+\\n {4}master: )m\\d`), `$1${store.replica.machine}`);
    const fileName = join(dir, `cluster-move-${i}.yaml`);
    writeFileSync(fileName, file);
    // one long-lived client in the coordinator's namespace: stop, wait for STOPPED, apply
    const move = await cluster.exec('co', ['env', ...Object.entries(cluster.operatorEnv).map(([k, v]) => `${k}=${v}`), 'node', '--import', 'tsx', join(ROOT, 'tools', 'admin-move.ts'), cluster.coordinatorTarget, store.master.name, fileName]);
    if (move.exitCode !== 0) throw new Error(`admin-move failed: ${move.stderr}`);
    await waitFor('the new master to serve', async () => ((await cluster.slots()).find((s) => s.name === store.replica.name)?.state === 'SERVING' ? true : undefined), 30_000, 20);
    const lines = await probe.lines();
    // the moment the old machine's agent released the address, from its log
    const unbound = readFileSync(join(dir, 'logs', `agent-${store.master.machine}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.includes('service IP released') && l.includes(store.serviceIp))
      .map((l) => Date.parse((JSON.parse(l) as { time: string }).time))
      .filter((t) => t >= released)[0];
    const back = lines.find((l) => l.ok && unbound !== undefined && l.at > unbound);
    if (!back || unbound === undefined) throw new Error(`no release or no greeting after it for ${store.serviceIp}: ${JSON.stringify(lines)}`);
    moveMs.push(back.at - unbound);
    const bound = readFileSync(join(dir, 'logs', `agent-${store.replica.machine}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.includes('service IP bound and announced') && l.includes(store.serviceIp))
      .map((l) => Date.parse((JSON.parse(l) as { time: string }).time))
      .filter((t) => t >= unbound)[0];
    if (bound !== undefined) boundMs.push(back.at - bound);
    const outage = back.at - (lines.find((l) => !l.ok && l.at >= released - 50)?.at ?? released);
    outageMs.push(outage);
    console.log(`  move of ${store.serviceIp} (${store.master.machine} → ${store.replica.machine}): released → first greeting from the new machine ${back.at - unbound} ms (bound → greeting ${boundMs.at(-1)} ms); client saw no greeting for ${outage} ms`);
    await cluster.slotctl(['slot', 'start', store.master.name]);
  }
  out.ipMoveMs = {
    all: moveMs,
    goal: 1000,
    note: 'from the old agent releasing the service IP (its log) to the client namespace getting the first IMAP greeting at that IP from the new machine (probing every 5 ms); includes the cluster apply by slotctl, the new agent stopping its replica, the ARP probe, binding, gratuitous ARP and starting cyrmaster',
  };
  out.boundToGreetingMs = { all: boundMs, note: 'from the new agent binding and announcing the address (after its 200 ms ARP probe) to the first greeting: gratuitous ARP taking effect plus cyrmaster start' };
  out.clientOutageMs = { all: outageMs, note: 'no greeting at the service IP, from the old master stopping to the new one answering: includes stopping the old master and two slotctl round trips' };
} finally {
  const t = performance.now();
  await cluster.destroy();
  out.teardownMs = round(performance.now() - t);
  removeDir(dir);
  stopSyslogd();
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'netns.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`netns: ${JSON.stringify({ bringUpMs: out.bringUpMs, teardownMs: out.teardownMs, ipMoveMs: (out.ipMoveMs as { all: number[] }).all })}; written to bench/results/netns.json`);
