// Checks shared by the namespace-cluster tests: stores as slotctl reports them, one master per store, no lost or
// duplicated acknowledged message (the load generator's record against IMAP on master and replica), and the
// split-brain watch over every machine.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, expect } from 'vitest';
import { processCommandLines, removeDir } from '../support/fixtures.js';
import { waitFor } from '../../tools/local-cluster.js';
import { MasterWatch, type MasterWatchResult } from './master-watch.js';
import { NETNS_PREFIX, type NetnsCluster } from './netns.js';

export interface SlotJson {
  name: string;
  machine: string;
  ip: string;
  state: string;
  role: string;
  epochApplied: number;
  pid: number;
  backlog?: { files: number; mailboxes: number; stalled: boolean; stallReason: string; mailboxNames?: string[] };
}
export interface StoreJson {
  name: string;
  serviceIp: string;
  epoch: number;
  health: string;
  master: SlotJson;
  replica: SlotJson;
}
export interface OperationJson {
  id: string;
  kind: string;
  state: string;
  step: string;
  error: string;
  store: string;
  createdAt: string;
  updatedAt: string;
  children: OperationJson[];
  steps: { step: string; at: string; reason: string }[];
}

export function clusterChecks(cluster: NetnsCluster, users: readonly string[]) {
  const stores = () => cluster.slotctlJson<StoreJson[]>(['store', 'list']);
  const store = async (name: string) => (await stores()).find((s) => s.name === name)!;
  const operation = (id: string) => cluster.slotctlJson<OperationJson>(['operations', 'show', id]);
  /** The operation once it has ended (any state but running). */
  const ended = (id: string, what: string, timeoutMs: number) =>
    waitFor(what, async () => {
      const o = await operation(id);
      return o.state === 'running' ? undefined : o;
    }, timeoutMs, 200);

  /** Exactly one slot of the store serves as master, the one the database names, and the other as its replica. */
  const expectOneMaster = (name: string, timeoutMs = 60_000): Promise<StoreJson> =>
    waitFor(`${name} to have one master and one replica serving`, async () => {
      const s = await store(name);
      const ok = s.master.state === 'SERVING' && s.master.role === 'MASTER' && s.replica.state === 'SERVING' && s.replica.role === 'REPLICA';
      return ok && s.master.epochApplied === s.epoch && s.replica.epochApplied === s.epoch ? s : undefined;
    }, timeoutMs, 250);

  const waitAgentsConnected = (): Promise<unknown> =>
    waitFor('every agent to be connected', async () => {
      const machines = await cluster.slotctlJson<{ name: string; connected: boolean; state: string }[]>(['machine', 'list']);
      // up, or up and `returning` (an old master waiting for its recovery): not down, suspect or fenced
      return machines.every((m) => m.connected && (m.state === 'up' || m.state === 'returning')) ? true : undefined;
    }, 30_000, 200);

  /**
   * Every message the load generator got 250 for is in its user's INBOX on the store's current master exactly once,
   * and the replica holds exactly the same messages. After a crash a delivery cut off before its 250 may have been
   * stored and then retried by the MTA (at-least-once, as with any mail server): `allowDuplicates` counts them only.
   */
  const expectNoLoss = async (ackedFile: string, names: readonly string[], options: { allowDuplicates?: boolean } = {}): Promise<number> => {
    const acked = readFileSync(ackedFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; store: string; user: string });
    const list = (await stores()).filter((s) => names.includes(s.name));
    const masters = await cluster.mail<Record<string, string[]>[]>('mailboxes', list.map((s) => ({ host: s.serviceIp, users: [...users] })));
    list.forEach((s, i) => {
      for (const user of users) {
        const got = masters[i]![user] ?? [];
        const want = acked.filter((a) => a.store === s.name && a.user === user).map((a) => a.id);
        const missing = want.filter((id) => !got.includes(id));
        expect(missing, `acknowledged but missing on ${s.name} (${s.master.name}) for ${user}`).toEqual([]);
        const duplicates = got.length - new Set(got).size;
        if (options.allowDuplicates && duplicates) console.log(`${duplicates} duplicate(s) on ${s.name} for ${user} (deliveries cut off before their 250 and retried)`);
        else expect(duplicates, `duplicates on ${s.name} for ${user}`).toBe(0);
      }
    });
    await waitFor('every replica to hold what its master holds', async () => {
      const replicas = await cluster.mail<Record<string, string[]>[]>('mailboxes', list.map((s) => ({ host: s.replica.ip, users: [...users] })));
      return list.every((_, i) => users.every((u) => JSON.stringify([...(replicas[i]![u] ?? [])].sort()) === JSON.stringify([...(masters[i]![u] ?? [])].sort()))) ? true : undefined;
    }, 60_000, 1000);
    return acked.length;
  };

  /** Watches every machine for two LMTP listeners on one service IP (two slots taking mail for one store). */
  const watchMasters = (list: StoreJson[]): MasterWatch => {
    const watch = new MasterWatch(new Map(cluster.machines.map((m) => [m, cluster.ns(m)])), new Set(list.map((s) => s.serviceIp)));
    watch.start();
    return watch;
  };

  /** No dual master; and the watch saw masters at all (in at least `seenShare` of the samples per store). */
  const expectNeverTwoMasters = (result: MasterWatchResult, list: StoreJson[], seenShare = 0.5): void => {
    expect(result.dual, 'moments with two LMTP listeners for one service IP').toEqual([]);
    expect(result.samples).toBeGreaterThan(100);
    for (const s of list) expect(result.seen[s.serviceIp] ?? 0, s.name).toBeGreaterThan(result.samples * seenShare);
  };

  const loadTargets = (list: StoreJson[]) => list.map((s) => ({ store: s.name, host: s.serviceIp, users: [...users] }));

  return { stores, store, operation, ended, expectOneMaster, waitAgentsConnected, expectNoLoss, watchMasters, expectNeverTwoMasters, loadTargets };
}

/**
 * The life of a test file's namespace cluster: started before its tests (waiting, if need be, for another file's
 * cluster to end), destroyed after them, and checked to have left no namespace and no process behind.
 */
export function useCluster(cluster: NetnsCluster, dir: string, id: string): void {
  beforeAll(async () => {
    await cluster.start();
  }, 900_000);
  afterAll(async () => {
    await cluster.destroy();
    removeDir(dir);
    const left = (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${NETNS_PREFIX}${id}-`));
    expect(left).toEqual([]);
    expect(processCommandLines().filter((l) => l.includes(dir))).toEqual([]);
  }, 120_000);
}
