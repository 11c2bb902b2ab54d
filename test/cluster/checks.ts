// Checks shared by the namespace-cluster tests: stores as slotctl reports them, one master per store, master and
// replica holding the same mail (every folder, over IMAP), no lost or duplicated acknowledged message (the load
// generator's record against the masters), and the split-brain watch over every machine.
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect } from 'vitest';
import { processCommandLines, readLogLines, removeDir } from '../support/fixtures.js';
import { type FoundLoad, type LoadCheckOptions, loadIdOf, loadProblems, readLoadRecord } from '../support/load-record.js';
import type { CompareOptions, PairResult } from '../support/mail-compare.js';
import { expectSameMail } from '../support/same-mail.js';
import { ROOT, waitFor } from '../../tools/local-cluster.js';
import { MasterWatch, type MasterWatchResult } from './master-watch.js';
import type { NetnsCluster } from './netns.js';
import { NETNS_PREFIX } from './netns-cleanup.js';

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
  /** What a running operation waits for ('' when a rule fired at its last evaluation). */
  waiting: string;
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
  /** One master and one replica serving, both at the store's epoch. */
  const settled = (s: StoreJson): boolean =>
    s.master.state === 'SERVING' && s.master.role === 'MASTER' && s.replica.state === 'SERVING' && s.replica.role === 'REPLICA' && s.master.epochApplied === s.epoch && s.replica.epochApplied === s.epoch;

  const expectOneMaster = (name: string, timeoutMs = 60_000): Promise<StoreJson> =>
    waitFor(`${name} to have one master and one replica serving`, async () => {
      const s = await store(name);
      return settled(s) ? s : undefined;
    }, timeoutMs, 250);

  /**
   * expectOneMaster for many stores (default: every one) in one poll of the store list — one `slotctl` per poll, not
   * one per store (each ~1 s on a busy host). On timeout it names the stores that were not settled.
   */
  const expectAllOneMaster = (names?: readonly string[], timeoutMs = 90_000): Promise<StoreJson[]> =>
    waitFor(`${names ? names.join(', ') : 'every store'} to have one master and one replica serving`, async () => {
      const list = (await stores()).filter((s) => !names || names.includes(s.name));
      if (names && list.length !== names.length) throw new Error(`unknown store among ${names.join(', ')}`);
      const waiting = list.filter((s) => !settled(s));
      if (waiting.length) throw new Error(`not yet: ${waiting.map((s) => `${s.name} (master ${s.master.name} ${s.master.state}/${s.master.role} at ${s.master.epochApplied}, replica ${s.replica.name} ${s.replica.state}/${s.replica.role} at ${s.replica.epochApplied}, epoch ${s.epoch})`).join('; ')}`);
      return list;
    }, timeoutMs, 250);

  const waitAgentsConnected = (): Promise<unknown> =>
    waitFor('every agent to be connected', async () => {
      const machines = await cluster.slotctlJson<{ name: string; connected: boolean; state: string }[]>(['machine', 'list']);
      // up, or up and `returning` (an old master waiting for its recovery): not down, suspect or fenced
      return machines.length === cluster.machines.length && machines.every((m) => m.connected && (m.state === 'up' || m.state === 'returning')) ? true : undefined;
    }, 30_000, 200);

  /**
   * Each store's master (its service IP) and replica (its slot IP) hold the same users, folders and messages
   * (Message-ID, flags, hash of the bytes), read over IMAP from the client namespace until they agree or 60 s pass.
   * `users` must exist on both sides; every store must hold some mail unless `allowEmpty` (two empty stores agree
   * and prove nothing). Returns each master's snapshot.
   */
  const expectReplicasMatch = (list: readonly StoreJson[], options: CompareOptions & { timeoutMs?: number; allowEmpty?: boolean } = {}): Promise<PairResult[]> =>
    expectSameMail(list.map((s) => ({ name: s.name, master: s.serviceIp, replica: s.replica.ip })), options, async (pairs, timeoutMs, compare) => {
      const request = JSON.stringify({ ...compare, pairs, timeoutMs });
      const run = await cluster.exec('cl', ['node', '--import', 'tsx', join(ROOT, 'test', 'support', 'mail-compare-cli.ts'), request]);
      if (run.exitCode !== 0) throw new Error(`mail-compare-cli failed: ${run.stderr}`);
      return JSON.parse(run.stdout) as PairResult[];
    });

  /**
   * The load generator's record against the stores: every message it got 250 for is on its store's current master
   * exactly once, nothing of this load is stored that was never acknowledged, no delivery was left in flight or
   * rejected, and every replica holds exactly what its master holds (expectReplicasMatch). A duplicate fails unless
   * the test explains it (`duplicatesFromRetries`) and the message was retried after a cut-off that followed its data.
   */
  const expectNoLoss = async (ackedFile: string, names: readonly string[], options: LoadCheckOptions = {}): Promise<number> => {
    const record = readLoadRecord(ackedFile);
    const list = (await stores()).filter((s) => names.includes(s.name));
    expect(list.map((s) => s.name).sort(), 'stores under load').toEqual([...names].sort());
    const results = await expectReplicasMatch(list, { users });
    const prefix = record.summary?.prefix ?? record.acks[0]?.id.replace(/-\d+$/, '') ?? '';
    const found: FoundLoad = {};
    for (const r of results) {
      found[r.name] = {};
      for (const [user, folders] of Object.entries(r.master)) {
        const ids = Object.values(folders).flat().map((m) => loadIdOf(m.messageId, prefix)).filter((id): id is string => id !== undefined);
        if (ids.length) found[r.name]![user] = ids;
      }
    }
    const { problems, explained } = loadProblems(record, found, names, options);
    for (const line of explained) console.log(`explained duplicate: ${line}`);
    expect(problems, 'the load against the masters').toEqual([]);
    return record.acks.length;
  };

  /** Watches every machine for two LMTP listeners on one service IP (two slots taking mail for one store). */
  const watchMasters = async (list: StoreJson[]): Promise<MasterWatch> => {
    const watch = new MasterWatch(new Map(cluster.machines.map((m) => [m, cluster.ns(m)])), new Set(list.map((s) => s.serviceIp)));
    await watch.start();
    return watch;
  };

  /**
   * No dual master, a whole record (nothing lost, nothing that does not fit), and the watch saw masters at all: each
   * store's service IP listened on for over `seenShare` of the watched time.
   */
  const expectNeverTwoMasters = (result: MasterWatchResult, list: StoreJson[], seenShare = 0.5): void => {
    console.log(`master watch: ${result.changes} listener change(s) in ${Math.round(result.watchedMs)} ms, ${result.lost} event(s) lost`);
    expect(result.dual, 'moments with two LMTP listeners for one service IP').toEqual([]);
    expect(result.lost, 'listener events the ring buffer lost: the record is not whole').toBe(0);
    expect(result.inconsistent, 'records the watch could not place').toEqual([]);
    expect(result.watchedMs).toBeGreaterThan(0);
    expect(list.length, 'stores watched').toBeGreaterThan(0);
    for (const s of list) expect(result.listening[s.serviceIp] ?? 0, `share of the time ${s.name} was listened on`).toBeGreaterThan(seenShare);
  };

  /**
   * Restarts `machine`'s agent (SIGTERM, wait, start; the cluster's agents must keep their slots) and resolves, with
   * the milliseconds it took, once the new agent is connected (on `version` if given), its machine up and every one
   * of its slots serving from the cyrmaster that served it before: re-adopted, not restarted.
   */
  const restartAgentReadopted = async (machine: string, version?: string): Promise<number> => {
    const slotsOf = (list: StoreJson[]) => list.flatMap((s) => [s.master, s.replica]).filter((slot) => slot.machine === machine);
    const before = slotsOf(await stores());
    const t = performance.now();
    await cluster.restartAgent(machine);
    await waitFor(`${machine}'s agent${version ? ` on ${version}` : ''} with its slots re-adopted`, async () => {
      const m = (await cluster.slotctlJson<{ name: string; connected: boolean; agentVersion: string; state: string }[]>(['machine', 'list'])).find((x) => x.name === machine)!;
      // not yet: thrown, so that a timeout names what was last seen instead of only what was awaited
      if (!m.connected || m.state !== 'up' || (version && m.agentVersion !== version)) {
        throw new Error(`${machine}: connected ${m.connected}, state ${m.state}, agent ${m.agentVersion}`);
      }
      const now = slotsOf(await stores());
      const notYet = before
        .map((b) => ({ b, slot: now.find((x) => x.name === b.name) }))
        .filter(({ b, slot }) => !slot || slot.state !== 'SERVING' || slot.pid !== b.pid)
        .map(({ b, slot }) => (slot ? `${slot.name} ${slot.state} pid ${slot.pid} (was ${b.pid})` : `${b.name} missing`));
      if (notYet.length > 0 || now.length !== before.length) throw new Error(`${machine}: ${notYet.join(', ') || `${now.length} slots, was ${before.length}`}`);
      return true;
    }, 60_000, 100);
    return performance.now() - t;
  };

  /**
   * How close each restart of `machine`'s agent came to the fence: the lease inherited from the agent before (renewed
   * with the restart hold on its way out), left at the new agent's first renewal — one figure per restart, oldest first.
   */
  const leaseLeftAtRestarts = (machine: string): number[] =>
    readLogLines(cluster.agentLogFile(machine))
      .filter((l) => l.msg === 'first renewal of this agent: the lease inherited from the one before had this much left')
      .map((l) => l.leftMs as number);

  const loadTargets = (list: StoreJson[]) => list.map((s) => ({ store: s.name, host: s.serviceIp, users: [...users] }));

  return { stores, store, operation, ended, expectOneMaster, expectAllOneMaster, waitAgentsConnected, expectReplicasMatch, expectNoLoss, watchMasters, expectNeverTwoMasters, loadTargets, restartAgentReadopted, leaseLeftAtRestarts };
}

/**
 * The life of a test file's namespace cluster: started before its tests (waiting, if need be, for another file's
 * cluster to end), destroyed after them, and checked to have left no namespace and no process behind.
 */
export function useCluster(cluster: NetnsCluster, dir: string, id: string, options: { busyLoops?: number; servingTimeoutMs?: number } = {}): void {
  beforeAll(async () => {
    if (options.busyLoops) {
      // the load is there before the first process of the cluster starts, and after the lock: another file's
      // cluster must not share the busy host with this one
      await cluster.lock();
      cluster.startBusy(options.busyLoops);
    }
    await cluster.start({ servingTimeoutMs: options.servingTimeoutMs });
  }, 900_000);
  afterAll(async () => {
    await cluster.destroy();
    removeDir(dir);
    const left = (await execa('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${NETNS_PREFIX}${id}-`));
    expect(left).toEqual([]);
    expect(processCommandLines().filter((l) => l.includes(dir))).toEqual([]);
  }, 120_000);
}
