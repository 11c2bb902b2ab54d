// A master whose meta partition is full: Cyrus acknowledges APPENDs but cannot write them to its sync log (found by
// the soak, seed 20261204: two such messages never reached the replica). The slot is marked and says so; a
// switchover is refused; once there is room again the agent logs a sync of every mailbox and the replica gets them.
// And if the machine is lost while marked: every mailbox of the old master is at risk, and recovery brings the
// acknowledged messages to the new master. Real Cyrus on tmpfs partitions, real IMAP, a namespace cluster.
import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { NetnsCluster } from './cluster/netns.js';
import { clusterChecks, useCluster, type StoreJson } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('unlogged');
const cluster = new NetnsCluster({ dir, id: 'u', storePrefix: 'u', machines: 3, slotsPerMachine: 2, partitionFsMb: 24 });
const USERS = ['ann'];
const { stores, expectOneMaster } = clusterChecks(cluster, USERS);
useCluster(cluster, dir, 'u');

interface SlotShow {
  name: string;
  backlog?: { unloggedSince?: string };
}
interface AtRiskJson {
  store: string;
  slot: string;
  state: string;
  unloggedSince: string;
  mailboxes: string[];
}
interface EventJson {
  kind: string;
  slot: string;
  reason: string;
}

const storeOf = async (name: string): Promise<StoreJson> => (await stores()).find((s) => s.name === name)!;
const unloggedSince = async (slot: string) => (await cluster.slotctlJson<SlotShow>(['slot', 'show', slot])).backlog?.unloggedSince ?? '';
const events = (since: number) => cluster.slotctlJson<EventJson[]>(['events', '--since', new Date(since).toISOString(), '--limit', '10000']);
const folder = async (host: string, name: string) => (await cluster.mail<string[][]>('folder', [{ host, user: 'ann', folder: name }]))[0]!;

/**
 * The master's meta partition filled, 8 APPENDs to ann's folder tried, and the master's report of the changes its
 * sync log missed awaited; the fill file (to remove) and the subjects acknowledged.
 */
async function appendWhileMetaFull(s: StoreJson, folderName: string): Promise<{ fill: string; acked: string[] }> {
  const { file } = cluster.fillPartition(s.master.machine, s.name, 'meta', 'test-fill');
  try {
    const acked = await fileEach(s.serviceIp, folderName, Array.from({ length: 8 }, (_, i) => `${s.name} while full ${i + 1}`));
    console.log(`${s.name}: ${acked.length} of 8 APPENDs acknowledged with the master's meta partition full`);
    expect(acked.length, 'APPENDs acknowledged while the meta partition was full').toBeGreaterThan(0);
    await waitFor('the master to report changes its sync log missed', async () => ((await unloggedSince(s.master.name)) ? true : undefined), 30_000, 250);
    return { fill: file, acked };
  } catch (err) {
    rmSync(file, { force: true });
    throw err;
  }
}

/** APPENDs each subject to ann's folder on `host`, one session each; the subjects the server acknowledged. */
async function fileEach(host: string, name: string, subjects: string[]): Promise<string[]> {
  const acked: string[] = [];
  for (const subject of subjects) {
    try {
      await cluster.mail('file', [{ host, user: 'ann', folder: name, subject }]);
      acked.push(subject);
    } catch {
      // refused (the full partition): not acknowledged, so not owed
    }
  }
  return acked;
}

/** A folder with one message replicated, made while there is room (its index files then have some). */
async function folderReplicated(s: StoreJson, name: string): Promise<void> {
  await cluster.mail('file', [{ host: s.serviceIp, user: 'ann', folder: name, subject: `${name} before the fill` }]);
  await waitFor(`${name} on the replica`, async () => ((await folder(s.replica.ip, name)).length === 1 ? true : undefined), 30_000, 250);
}

describe('changes the sync log could not record', () => {
  it('marks the master, refuses a switchover, and replicates them once its meta partition has room again', async () => {
    const s = await storeOf('u01');
    await folderReplicated(s, 'Later');
    const since = Date.now();
    const { fill, acked } = await appendWhileMetaFull(s, 'Later');
    try {
      const refused = await cluster.slotctl(['store', 'switchover', s.name, '--wait']);
      expect(refused.exitCode).not.toBe(0);
      expect(`${refused.stdout}${refused.stderr}`).toMatch(/may have changes its sync log could not record \(since \S+; its meta partition full or failing\): free space on it/);
      expect((await cluster.slotctl(['status'])).stdout).toMatch(new RegExp(`${s.master.name} on ${s.master.machine}: changes since \\S+ may be missing from its sync log`));
      // nothing replicates them meanwhile
      expect(await folder(s.replica.ip, 'Later')).toEqual(['Later before the fill']);
    } finally {
      rmSync(fill, { force: true });
    }
    await waitFor('the mark to clear', async () => ((await unloggedSince(s.master.name)) ? undefined : true), 60_000, 500);
    await waitFor('every acknowledged APPEND on the replica', async () => {
      const there = await folder(s.replica.ip, 'Later');
      return acked.every((a) => there.includes(a)) ? true : undefined;
    }, 60_000, 500);
    const kinds = (await events(since)).filter((e) => e.slot === s.master.name && e.kind.startsWith('slot.sync-log-')).map((e) => e.kind);
    expect(kinds).toEqual(['slot.sync-log-unwritable', 'slot.sync-log-restored']);
    // and a switchover runs again
    expect((await cluster.slotctl(['store', 'switchover', s.name, '--wait'])).exitCode).toBe(0);
    await expectOneMaster(s.name);
  }, 300_000);

  it('a machine lost while marked: every mailbox of its old master is at risk, and recovery brings what was acknowledged', async () => {
    const s = await storeOf('u02');
    const victim = s.master.machine;
    await folderReplicated(s, 'Archive');
    const { fill, acked } = await appendWhileMetaFull(s, 'Archive');
    try {
      await cluster.crash(victim);
    } finally {
      rmSync(fill, { force: true }); // the disk is repaired while the machine is off
    }
    await waitFor('the replica to serve as master', async () => {
      const now = await storeOf(s.name);
      return now.master.name === s.replica.name && now.master.state === 'SERVING' && now.master.epochApplied === now.epoch ? true : undefined;
    }, 90_000, 250);
    const [record] = (await cluster.slotctlJson<AtRiskJson[]>(['store', 'at-risk'])).filter((r) => r.store === s.name);
    expect(record).toMatchObject({ slot: s.master.name, state: 'open' });
    expect(record!.unloggedSince).not.toBe('');
    expect((await cluster.slotctl(['store', 'at-risk', s.name])).stdout).toMatch(/changes since \S+ its sync log could not record .*: every mailbox of the slot is at risk/);

    await cluster.powerOn(victim);
    // the returned old master names every mailbox it holds, though no sync log of it does
    await waitFor('the record to name every mailbox of the old master', async () => {
      const r = (await cluster.slotctlJson<AtRiskJson[]>(['store', 'at-risk'])).find((x) => x.store === s.name);
      return r?.mailboxes.includes('user.ann.Archive') && r.mailboxes.includes('user.ann') ? r : undefined;
    }, 60_000, 500);
    const r = await cluster.slotctl(['machine', 'recover', victim]);
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    await expectOneMaster(s.name);
    const there = await folder(s.serviceIp, 'Archive');
    for (const a of acked) expect(there, `${a} on the new master`).toContain(a);
    expect((await cluster.slotctlJson<AtRiskJson[]>(['store', 'at-risk'])).filter((x) => x.store === s.name)).toEqual([]);
    expect(await unloggedSince(s.master.name)).toBe('');
  }, 400_000);
});
