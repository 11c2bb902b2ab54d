// Short network blips must not cost anyone their mail: for SLOTCTL_SOAK_SECONDS (60 in `npm test`, 600 in
// `npm run test:soak`) a random machine is cut off from everyone for 1–2 s every few seconds, under an MTA-like mail
// load. Afterwards: no machine was declared down, nothing failed over, no fence fired, every master is the same
// process it was, and every acknowledged message is on its master once and on its replica.
// For a shorter lease: SLOTCTL_SOAK_LEASE / SLOTCTL_SOAK_INTERVAL (the coordinator's --lease and
// --heartbeat-interval, e.g. 2s and 250ms) and SLOTCTL_BLIP_MS (the blips' range, e.g. 300-1000).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, type OperationJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const seconds = Number(process.env.SLOTCTL_SOAK_SECONDS ?? '60');
const lease = process.env.SLOTCTL_SOAK_LEASE;
const interval = process.env.SLOTCTL_SOAK_INTERVAL;
const blipRange = /^(\d+)-(\d+)$/.exec(process.env.SLOTCTL_BLIP_MS ?? '1000-2000');
if (!blipRange || Number(blipRange[1]) > Number(blipRange[2])) throw new Error(`SLOTCTL_BLIP_MS must be MIN-MAX in ms (e.g. 300-1000), not "${process.env.SLOTCTL_BLIP_MS}"`);
const [blipMin, blipMax] = [Number(blipRange[1]), Number(blipRange[2])];
const dir = tempDir('blips');
const coordinatorArgs = [...(lease ? ['--lease', lease] : []), ...(interval ? ['--heartbeat-interval', interval] : [])];
const cluster = new NetnsCluster({ dir, id: 'k', storePrefix: 'k', machines: 4, slotsPerMachine: 4, coordinatorArgs });
const { stores, waitAgentsConnected, expectNoLoss, loadTargets } = clusterChecks(cluster, ['ann', 'ben']);

useCluster(cluster, dir, 'k');

/** A fence that fired explains itself in the failure: the blips, the fence's record and the lease's last words. */
function leaseStory(machine: string, blips: string[]): string {
  const file = join(dir, 'agents', machine, 'fenced.json');
  if (!existsSync(file)) return '';
  const lines = (path: string, re: RegExp) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => re.test(l)).slice(-20) : []);
  return [
    `blips: ${blips.join(', ')}`,
    `fenced.json: ${readFileSync(file, 'utf8')}`,
    ...lines(join(dir, 'agents', machine, 'slot-fence.log'), /FENCED|released/),
    ...lines(join(dir, 'logs', `agent-${machine}.log`), /acknowledged late|fresh connection|lease|event loop delayed|session/),
  ].join('\n');
}

describe('network blips', () => {
  it(`fences nothing and fails over nothing through ${seconds} s of ${blipMin / 1000}–${blipMax / 1000} s blips to random machines${lease ? ` (lease ${lease}${interval ? `, heartbeats every ${interval}` : ''})` : ''}`, async () => {
    const before = await stores();
    const load = cluster.startLoad('load-blips', loadTargets(before), 25);
    const since = Date.now();
    const blips: string[] = [];
    while (Date.now() - since < seconds * 1000) {
      const machine = cluster.machines[Math.floor(Math.random() * cluster.machines.length)]!;
      const ms = blipMin + Math.round(Math.random() * (blipMax - blipMin));
      const at = new Date().toISOString().slice(11, 23);
      const begun = performance.now();
      await cluster.isolate(machine);
      await new Promise((r) => setTimeout(r, ms));
      await cluster.heal();
      // at most this long, from before the link went down to after it was up: what the machine lived through
      blips.push(`${machine} ${ms} ms at ${at} (≤ ${Math.round(performance.now() - begun)} ms)`);
      await new Promise((r) => setTimeout(r, 2000 + Math.random() * 3000));
    }
    console.log(`${blips.length} blips: ${blips.join(', ')}`);
    expect(blips.length).toBeGreaterThan(0);
    const summary = await load.stop();
    console.log(`load through the blips: ${JSON.stringify(summary)}`);
    await waitAgentsConnected();
    const events = await cluster.slotctlJson<{ kind: string; machine: string; reason: string }[]>(['events', '--since', new Date(since).toISOString(), '--limit', '10000']);
    expect(events.filter((e) => e.kind === 'machine.down')).toEqual([]);
    const failovers = (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all'])).filter((o) => o.kind === 'failover');
    expect(failovers).toEqual([]);
    for (const m of cluster.machines) expect(existsSync(join(dir, 'agents', m, 'fenced.json')), `${m} fenced\n${leaseStory(m, blips)}`).toBe(false);
    const after = await stores();
    expect(after.map((s) => s.name)).toEqual(before.map((s) => s.name));
    for (const s of after) {
      const b = before.find((x) => x.name === s.name)!;
      expect([s.master.name, s.epoch, s.master.pid], s.name).toEqual([b.master.name, b.epoch, b.master.pid]);
    }
    // a blip delays mail, it loses none and duplicates none
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight, `still queued or being delivered, per store: ${JSON.stringify(summary.inFlightByStore)}`).toBe(0);
    expect(await expectNoLoss(load.out, before.map((s) => s.name))).toBe(summary.acked);
  }, (seconds + 120) * 1000);
});
