// Machine loss on a namespace cluster with real Cyrus and real mail: 5 machines × 8 slots (20 stores, each machine's
// 4 masters replicated to 4 different peers). The coordinator stopped for 30 s changes nothing; a partition between
// two machines only stalls replication; a crashed machine's stores fail over to its peers under load, what it had
// not replicated is recorded and recovered when it returns; an isolated machine and a hung agent fence themselves
// before anything is promoted; two machines lost at once wait for an operator. A split-brain watch runs throughout.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../tools/local-cluster.js';
import { NetnsCluster } from './cluster/netns.js';
import { UNMERGEABLE_FAILPOINT } from '../packages/agent/src/recover/push.js';
import { clusterChecks, type OperationJson, type StoreJson, useCluster } from './cluster/checks.js';
import { tempDir } from './support/fixtures.js';

const dir = tempDir('failover');
/** Mailboxes the crash test's returning machine takes as not mergeable (its agent's failpoint; '' for none). */
let unmergeable = '';
const cluster = new NetnsCluster({
  dir, id: 'f', storePrefix: 'f', machines: 5, slotsPerMachine: 8, agentArgs: ['--stall-after', '3s'],
  agentEnv: (machine): Record<string, string> => (machine === 'm1' && unmergeable ? { [UNMERGEABLE_FAILPOINT]: unmergeable } : {}),
});
const USERS = ['ann', 'ben'];
const { stores, store, expectOneMaster, expectAllOneMaster, waitAgentsConnected, expectReplicasMatch, expectNoLoss, watchMasters, expectNeverTwoMasters, loadTargets } = clusterChecks(cluster, USERS);

interface EventJson {
  at: string;
  kind: string;
  machine: string;
  store: string;
  reason: string;
}
interface AtRiskJson {
  store: string;
  slot: string;
  machine: string;
  state: string;
  files: number;
  mailboxes: string[];
}
interface MachineJson {
  name: string;
  state: string;
  connected: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const machines = () => cluster.slotctlJson<MachineJson[]>(['machine', 'list']);
const events = (since: number) => cluster.slotctlJson<EventJson[]>(['events', '--since', new Date(since).toISOString(), '--limit', '10000']);
const operationsOf = async (kind: string, since: number) =>
  (await cluster.slotctlJson<OperationJson[]>(['operations', 'list', '--all', '--limit', '1000'])).filter((o) => o.kind === kind && Date.parse(o.createdAt) >= since);
const atRisk = (all = false) => cluster.slotctlJson<AtRiskJson[]>(['store', 'at-risk', ...(all ? ['--all'] : [])]);

/**
 * How long a failover may take here before a test calls it stuck: a bound for "it happened by itself", not a speed
 * goal (bench/failover.ts measures that: 8-10 s on an idle host). This file's own runs took 13-21 s from the crash
 * to every store served, with the mail load, the watch and slotctl polling on the same 2 cores.
 */
const FAILOVER_WAIT_MS = 90_000;

/** Each store served as master by the slot that was its replica (epoch + 1), reachable by IMAP on its service IP. */
async function waitServedByReplicas(lost: StoreJson[], timeoutMs = FAILOVER_WAIT_MS): Promise<void> {
  expect(lost.length, 'stores to fail over').toBeGreaterThan(0);
  await waitFor('every lost store to be served by its former replica', async () => {
    const now = await stores();
    for (const before of lost) {
      const s = now.find((x) => x.name === before.name)!;
      if (s.master.name !== before.replica.name || s.epoch !== before.epoch + 1 || s.master.state !== 'SERVING' || s.master.epochApplied !== s.epoch) return undefined;
    }
    const reachable = await Promise.all(lost.map((s) => cluster.canConnect('cl', s.serviceIp, 1143)));
    return reachable.every(Boolean) ? true : undefined;
  }, timeoutMs, 200);
}

/**
 * The victim agent's log lines, from `since`, in which a slot of `lost` (masters before the fault) started at its old
 * epoch or tried to take its addresses (the service IP's owner answered the probe): each such line is a former master
 * acting on a desired state a failover has replaced.
 */
function masterStartsSince(victim: string, lost: StoreJson[], since: number): string[] {
  const old = new Map(lost.map((s) => [s.master.name, s.epoch]));
  return readFileSync(cluster.agentLogFile(victim), 'utf8')
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return [];
      const l = JSON.parse(line) as { time: string; slot?: string; epoch?: number; event?: string; msg: string };
      if (!l.slot || !old.has(l.slot) || Date.parse(l.time) < since) return [];
      const started = l.event === 'start' && l.epoch === old.get(l.slot);
      return started || l.msg === 'not starting: address not taken' ? [line] : [];
    });
}

/** A machine that comes back: every store one master and one replica again (old masters clean or recovered). */
async function expectAllSettled(): Promise<void> {
  await waitAgentsConnected();
  await expectAllOneMaster(undefined, 120_000);
}

useCluster(cluster, dir, 'f');

describe('machine loss on a namespace cluster', () => {
  it('keeps every store serving, fences nothing and fails over nothing while the coordinator is stopped for 30 s', async () => {
    const all = await stores();
    const pids = Object.fromEntries(all.map((s) => [s.name, s.master.pid]));
    const watch = await watchMasters(all);
    const since = Date.now();
    await cluster.stopCoordinator();
    let result;
    try {
      // mail keeps flowing to every store while the coordinator is away (the partners' promises hold the masters)
      for (const at of [8_000, 22_000]) {
        await sleep(at - (Date.now() - since));
        await cluster.mail('deliver', all.map((s) => ({ host: s.serviceIp, user: 'ann', subject: `coordinator away ${at}` })));
      }
      await sleep(30_000 - (Date.now() - since));
    } finally {
      result = await watch.stop();
      await cluster.startCoordinator(); // the next tests need it whatever happened here
    }
    await waitAgentsConnected();
    expectNeverTwoMasters(result, all, 0.99); // every master listened in every sample: none was fenced
    const after = await stores();
    expect(after.map((s) => s.name)).toEqual(all.map((s) => s.name));
    for (const s of after) {
      const before = all.find((x) => x.name === s.name)!;
      expect([s.master.name, s.epoch, s.master.pid], s.name).toEqual([before.master.name, before.epoch, pids[s.name]]);
    }
    expect(await operationsOf('failover', since)).toEqual([]);
    const subjects = await cluster.mail<string[][]>('subjects', all.map((s) => ({ host: s.serviceIp, user: 'ann' })));
    expect(subjects).toHaveLength(all.length);
    for (const got of subjects) expect(got).toEqual(expect.arrayContaining(['coordinator away 8000', 'coordinator away 22000']));
    // and it replicated: every replica holds its master's mail
    await expectReplicasMatch(after, { users: ['ann'] });
  }, 120_000);

  it('treats a partition between two machines as stalled replication, not as a machine loss, and drains when healed', async () => {
    const all = await stores();
    const s = all.find((x) => x.master.machine === 'm1' && x.replica.machine === 'm2')!;
    // a partition is where a split brain would come from: watched like a failover
    const watch = await watchMasters(all);
    const since = Date.now();
    await cluster.cut('m1', 'm2');
    try {
      await cluster.mail('deliver', [{ host: s.serviceIp, user: 'ben', subject: 'across the cut' }]);
      const stalled = await waitFor('replication to show stalled', async () => {
        const now = await store(s.name);
        return now.master.backlog?.stalled ? now : undefined;
      }, 20_000, 250);
      expect(stalled.master.backlog!.stallReason).toMatch(/refuses connections|no progress/);
      const states = await machines();
      expect(states).toHaveLength(cluster.machines.length);
      expect(states.every((m) => m.state === 'up')).toBe(true);
    } finally {
      await cluster.heal();
    }
    await waitFor('the backlog to drain', async () => ((await store(s.name)).master.backlog?.files === 0 ? true : undefined), 60_000, 250);
    expect(await operationsOf('failover', since)).toEqual([]);
    expect((await events(since)).filter((e) => e.kind === 'machine.down')).toEqual([]);
    const replica = await cluster.mail<string[][]>('subjects', [{ host: s.replica.ip, user: 'ben' }]);
    expect(replica[0]).toContain('across the cut');
    await expectReplicasMatch([await store(s.name)], { users: ['ben'] });
    expectNeverTwoMasters(await watch.stop(), all, 0.99); // nothing moved: every master listened throughout
  }, 120_000);

  it('keeps a machine cut from the coordinator alone serving through a partner: its heartbeats relayed, no fence, no failover', async () => {
    const all = await stores();
    const victim = 'm2';
    const own = all.filter((s) => s.master.machine === victim);
    const pids = Object.fromEntries(own.map((s) => [s.name, s.master.pid]));
    const watch = await watchMasters(all);
    const since = Date.now();
    // its partners reach the coordinator, so none promises it anything (failsafe): only the relay keeps its lease.
    // 25 s: past the lease (5 s) and past the session's keepalive (15 s), after which its stream is gone too
    await cluster.cut(victim, 'co');
    let via: string | undefined;
    try {
      for (const at of [6_000, 14_000, 22_000]) {
        await sleep(at - (Date.now() - since));
        await cluster.mail('deliver', own.map((s) => ({ host: s.serviceIp, user: 'ann', subject: `cut from the coordinator ${at}` })));
        const m = (await cluster.slotctlJson<(MachineJson & { relayedVia: string })[]>(['machine', 'list'])).find((x) => x.name === victim)!;
        expect(m.state, `${victim} at ${at} ms`).toBe('up');
        via ??= m.relayedVia || undefined;
      }
      await sleep(25_000 - (Date.now() - since));
    } finally {
      await cluster.heal();
    }
    expect(via, 'status names the partner that relays').toMatch(/^m[1-5]$/);
    await waitAgentsConnected();
    await waitFor(`${victim} to be heard directly again`, async () => ((await cluster.slotctlJson<(MachineJson & { relayedVia: string })[]>(['machine', 'list'])).find((x) => x.name === victim)!.relayedVia === '' ? true : undefined), 20_000, 250);
    expectNeverTwoMasters(await watch.stop(), all, 0.99); // every master listened throughout: none was fenced
    expect(await operationsOf('failover', since)).toEqual([]);
    expect((await events(since)).filter((e) => e.kind === 'machine.down' && e.machine === victim)).toEqual([]);
    for (const s of own) expect((await store(s.name)).master.pid, `${s.name}'s master was not restarted`).toBe(pids[s.name]);
    const said = readFileSync(cluster.agentLogFile(victim), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { time: string; msg: string })
      .filter((l) => Date.parse(l.time) >= since)
      .map((l) => l.msg);
    expect(said).toContain(`lease renewed through partner ${via}: this machine does not reach the coordinator, its partner does`);
    expect(said.filter((m) => m.startsWith('lease expired'))).toEqual([]);
    const subjects = await cluster.mail<string[][]>('subjects', own.map((s) => ({ host: s.serviceIp, user: 'ann' })));
    for (const got of subjects) expect(got).toEqual(expect.arrayContaining(['cut from the coordinator 6000', 'cut from the coordinator 14000', 'cut from the coordinator 22000']));
    await expectReplicasMatch(await stores(), { users: ['ann'] });
  }, 150_000);

  it('fails a crashed machine over to its peers under load, records what was at risk, and recovers it when the machine returns', async () => {
    const all = await stores();
    const victim = 'm1';
    const lost = all.filter((s) => s.master.machine === victim);
    const first = lost[0]!;
    // fan-out: the victim's masters have their replicas on 4 different machines
    const peers = [...new Set(lost.map((s) => s.replica.machine))];
    expect(peers.length).toBeGreaterThanOrEqual(4);
    // a message that reached the replica, to be expunged on the new master after the failover
    await cluster.mail('deliver', [{ host: first.serviceIp, user: 'ann', subject: 'expunge me later' }]);
    await waitFor('the replica to have it', async () => ((await cluster.mail<string[][]>('subjects', [{ host: first.replica.ip, user: 'ann' }]))[0]!.includes('expunge me later') ? true : undefined), 30_000, 500);
    // a folder both sides have, to be deleted on the new master after the failover while the old master holds a
    // message filed there that never replicated (the soak, seed 3274726004: that recovery failed at every retry)
    await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Shared', subject: 'in Shared on both' }]);
    await waitFor('the replica to have Shared', async () => ((await cluster.mail<string[][]>('folder', [{ host: first.replica.ip, user: 'ann', folder: 'Shared' }]))[0]!.length ? true : undefined), 30_000, 500);
    // and one both have, deleted on the new master after the failover, that the old master's last sync log names
    // for an expunge only: nothing to give back (the soak, seed 12914: recovery made such a folder again, with the
    // messages its user had deleted in it)
    await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Gone', subject: 'gone one' }]);
    await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Gone', subject: 'gone two' }]);
    await waitFor('the replica to have Gone', async () => ((await cluster.mail<string[][]>('folder', [{ host: first.replica.ip, user: 'ann', folder: 'Gone' }]))[0]!.length === 2 ? true : undefined), 30_000, 500);
    // and one both have that the old master alone deletes before the crash: the failover undoes the delete (by
    // design: recovery never deletes on the new master), and the returning slot, its replica, must get it back
    // (the soak, seed 12914: a folder deleted 0.7 s before a crash stayed on the master only)
    // (ben's: ann's clash below resynchronises all of ann anyway)
    await cluster.mail('file', [{ host: first.serviceIp, user: 'ben', folder: 'Kept', subject: 'in Kept on both' }]);
    await waitFor('the replica to have Kept', async () => ((await cluster.mail<string[][]>('folder', [{ host: first.replica.ip, user: 'ben', folder: 'Kept' }]))[0]!.length ? true : undefined), 30_000, 500);

    const watch = await watchMasters(all);
    const load = cluster.startLoad('load-crash', loadTargets(all), 25);
    await sleep(2000);
    const since = Date.now();
    let crashedAt = 0;
    for (const p of peers) await cluster.blockSync(p);
    try {
      // changes only the old master will ever have: a new user, a new folder, and a user that the new master will
      // autocreate anew after the failover (the same mailbox under two uniqueids: the clash)
      await cluster.mail('deliver', [{ host: first.serviceIp, user: 'newcomer', subject: 'only on the old master' }]);
      await cluster.mail('deliver', [{ host: first.serviceIp, user: 'clashy', subject: 'clashy before the crash' }]);
      await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Projects', subject: 'filed on the old master' }]);
      // a folder made and deleted on the old master only: its sync log names it under DELETED (delayed delete),
      // which sync_client -m cannot push — the soak found a recovery that failed on it for ever (seed 3274726004)
      await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Doomed', subject: 'filed, then its folder deleted' }]);
      await cluster.mail('rmfolder', [{ host: first.serviceIp, user: 'ann', folder: 'Doomed' }]);
      await cluster.mail('file', [{ host: first.serviceIp, user: 'ann', folder: 'Shared', subject: 'in Shared on the old master only' }]);
      await cluster.mail('rmfolder', [{ host: first.serviceIp, user: 'ben', folder: 'Kept' }]);
      expect(await cluster.mail<number[]>('expunge', [{ host: first.serviceIp, user: 'ann', folder: 'Gone', subject: 'gone two' }])).toEqual([1]);
      await waitFor('the old master to report a backlog naming them', async () => {
        const names = (await store(first.name)).master.backlog?.mailboxNames ?? [];
        const deleted = names.some((n) => n.startsWith('DELETED.user.ann.Doomed.'));
        const kept = names.some((n) => n.startsWith('DELETED.user.ben.Kept.'));
        const named = ['user.newcomer', 'user.ann.Projects', 'user.clashy', 'user.ann.Shared', 'user.ann.Gone'].every((n) => names.includes(n));
        return named && deleted && kept ? true : undefined;
      }, 20_000, 200);
      crashedAt = Date.now();
      await cluster.crash(victim);
    } finally {
      for (const p of peers) await cluster.unblockSync(p);
    }
    await waitServedByReplicas(lost);
    const tookMs = Date.now() - crashedAt;
    console.log(`crash(${victim}): its ${lost.length} stores served from ${peers.length} peers ${tookMs} ms after the crash`);

    const down = (await events(since)).find((e) => e.kind === 'machine.down' && e.machine === victim)!;
    expect(down.reason).toMatch(/machine gone: none of its partners/);
    const records = await atRisk();
    expect(records.map((r) => r.store).sort()).toEqual(lost.map((s) => s.name).sort());
    const record = records.find((r) => r.store === first.name)!;
    expect(record).toMatchObject({ slot: first.master.name, machine: victim, state: 'open' });
    expect(record.files).toBeGreaterThan(0);
    expect(record.mailboxes).toEqual(expect.arrayContaining(['user.newcomer', 'user.ann.Projects']));

    // after the failover: mail goes to the new masters (the load goes on), one message is expunged there
    expect(await cluster.mail<number[]>('expunge', [{ host: first.serviceIp, user: 'ann', subject: 'expunge me later' }])).toEqual([1]);
    await cluster.mail('rmfolder', [{ host: first.serviceIp, user: 'ann', folder: 'Shared' }]);
    await cluster.mail('rmfolder', [{ host: first.serviceIp, user: 'ann', folder: 'Gone' }]);
    await cluster.mail('deliver', [{ host: first.serviceIp, user: 'clashy', subject: 'clashy after the failover' }]);
    await sleep(2000);

    // the machine returns (mail still arriving: a recovery merges into mailboxes that receive deliveries as it
    // pushes, as in production and in bench:failover, where such pushes bailed out): its old masters stay stopped,
    // their leftover sync logs in quarantine
    // ben's INBOX of every store goes the IMAP way, as a mailbox under deliveries does when sync_client -m loses its
    // race (IMAP_SYNC_CHANGED): both sides hold it under one uniqueid, and the copy left on the returning slot must
    // not be merged back into the master once the slot is its replica (ci-146: every message twice). Ann's too: the
    // new master expunged one of hers after the failover, which the copy must leave out (and her INBOX on the old
    // slot may still go: that message is not lost, its user deleted it).
    unmergeable = 'user.ann,user.ben';
    await cluster.powerOn(victim);
    unmergeable = '';
    await waitFor(`${victim} to be returning`, async () => ((await machines()).find((m) => m.name === victim)?.state === 'returning' ? true : undefined), 30_000, 250);
    const quarantine = join(dir, 'srv', victim, first.name, 'meta', 'quarantine');
    expect(readdirSync(quarantine).length).toBeGreaterThan(0);

    await waitFor('every old master to report back stopped, as replica, with its quarantine', async () => {
      const now = await stores();
      return lost.every((l) => {
        const s = now.find((x) => x.name === l.name)!;
        const notRunning = s.replica.state === 'STOPPED' || s.replica.state === 'CONFIGURED';
        return s.replica.name === l.master.name && notRunning && s.replica.role === 'REPLICA' && s.replica.epochApplied === s.epoch;
      })
        ? true
        : undefined;
    }, 30_000, 250);
    const r = await cluster.slotctl(['machine', 'recover', victim]);
    expect(r.exitCode, `${r.stdout}${r.stderr}`).toBe(0);
    await expectAllOneMaster(lost.map((s) => s.name), 60_000);
    const summary = await load.stop();
    // what only the old master had is on the new master now; the expunge made there after the failover stands
    const [newcomer] = await cluster.mail<string[][]>('subjects', [{ host: first.serviceIp, user: 'newcomer' }]);
    expect(newcomer).toEqual(['only on the old master']);
    const [projects] = await cluster.mail<string[][]>('folder', [{ host: first.serviceIp, user: 'ann', folder: 'Projects' }]);
    expect(projects).toEqual(['filed on the old master']);
    const [inbox] = await cluster.mail<string[][]>('subjects', [{ host: first.serviceIp, user: 'ann' }]);
    expect(inbox).not.toContain('expunge me later');
    // the clash: copied over IMAP into the new master's own mailbox, both messages there once
    const [clashy] = await cluster.mail<string[][]>('subjects', [{ host: first.serviceIp, user: 'clashy' }]);
    expect(clashy).toEqual(['clashy after the failover', 'clashy before the crash']);
    const detail = (await cluster.slotctl(['store', 'at-risk', first.name])).stdout;
    expect(detail).toMatch(/user\.clashy\s+copied\s+verified\s+uniqueid \S+ here, \S+ on the new master: 1 message\(s\) copied over IMAP/);
    expect(detail).toMatch(/DELETED\.user\.ann\.Doomed\.\S+\s+nothing\s+.*deleted on the old slot/);
    expect(detail).toMatch(/user\.ben\s+copied\s+verified\s+not merged \(failpoint \S+\): \d+ message\(s\) copied over IMAP, \d+ already there/);
    // ann's INBOX the same way, leaving out the message the new master expunged after the failover
    expect(detail).toMatch(/user\.ann\s+copied\s+verified\s+not merged \(failpoint \S+\): \d+ message\(s\) copied over IMAP, \d+ already there, 1 expunged or deleted there after the failover left out/);
    // Shared, deleted on the new master after the failover: made again there for its unreplicated message only (not
    // dropped unseen); the message both had, which its user deleted with the folder, stays deleted
    expect(detail).toMatch(/user\.ann\.Shared\s+copied\s+verified\s+deleted on the new master after the failover \(DELETED\.user\.ann\.Shared\.\S+\); made again for 1 message\(s\) the new master never had: 1 message\(s\) copied over IMAP, 0 already there, 1 expunged or deleted there after the failover left out/);
    const [shared] = await cluster.mail<string[][]>('folder', [{ host: first.serviceIp, user: 'ann', folder: 'Shared' }]);
    expect(shared).toEqual(['in Shared on the old master only']);
    // Gone, deleted on the new master after the failover with every message the old slot has: not made again
    expect(detail).toMatch(/user\.ann\.Gone\s+nothing\s+.*deleted on the new master after the failover \(DELETED\.user\.ann\.Gone\.\S+\), with the 1 message\(s\) it has here: not made again/);
    expect(await cluster.mail<string[][]>('folder', [{ host: first.serviceIp, user: 'ann', folder: 'Gone' }])).toEqual([[]]);
    // Kept, deleted on the old master only: back on the new master (the delete was at risk and is undone), and on
    // the returned replica too — its owner was resynchronised from the new master
    expect(detail).toMatch(/DELETED\.user\.ben\.Kept\.\S+\s+nothing\s+.*deleted on the old slot/);
    const [keptOnMaster] = await cluster.mail<string[][]>('folder', [{ host: first.serviceIp, user: 'ben', folder: 'Kept' }]);
    expect(keptOnMaster).toEqual(['in Kept on both']);
    await waitFor('the returned replica to hold Kept again', async () => {
      const [onReplica] = await cluster.mail<string[][]>('folder', [{ host: first.master.ip, user: 'ben', folder: 'Kept' }]);
      return JSON.stringify(onReplica) === JSON.stringify(keptOnMaster) ? true : undefined;
    }, 30_000, 500);
    // and the returned replica catches up with the clashing user from the new master (user-level resync)
    await waitFor('the replica to hold the clashing user as the master does', async () => {
      const [onReplica] = await cluster.mail<string[][]>('subjects', [{ host: first.master.ip, user: 'clashy' }]);
      return JSON.stringify(onReplica) === JSON.stringify(clashy) ? true : undefined;
    }, 30_000, 500);
    const closed = (await atRisk(true)).filter((x) => lost.some((s) => s.name === x.store));
    expect([...new Set(closed.map((x) => x.store))].sort(), 'a record for every lost store').toEqual(lost.map((s) => s.name).sort());
    expect(closed.every((x) => x.state === 'recovered' || x.state === 'nothing-lost'), JSON.stringify(closed)).toBe(true);
    expect(await atRisk()).toEqual([]);

    // every message acknowledged before (and after) the crash is on the stores' masters and replicas now
    const acked = await expectNoLoss(load.out, all.map((s) => s.name), {
      duplicatesFromRetries: `the crash of ${victim} cut deliveries to its masters after their data and before their 250; the load generator retries them as an MTA does (at-least-once)`,
    });
    expect(acked).toBe(summary.acked);
    expect(summary.rejected).toBe(0);
    expect(summary.inFlight, `still queued or being delivered, per store: ${JSON.stringify(summary.inFlightByStore)}`).toBe(0);
    expectNeverTwoMasters(await watch.stop(), all, 0.2);
    await expectAllSettled();
  }, 600_000); // a hang detector, not a speed goal: crash, failover, return, recovery and the loss check took over 300 s beside two busy loops

  it('fences an isolated machine before any of its stores is promoted elsewhere', async () => {
    const all = await stores();
    const victim = 'm2';
    const lost = all.filter((s) => s.master.machine === victim);
    expect(lost.length).toBeGreaterThan(0);
    const watch = await watchMasters(all);
    const since = Date.now();
    await cluster.isolate(victim);
    try {
      await waitServedByReplicas(lost);
      const fenced = JSON.parse(readFileSync(join(dir, 'agents', victim, 'fenced.json'), 'utf8')) as { wallTime: string; slots: { slot: string }[] };
      expect(fenced.slots.map((x) => x.slot).sort()).toEqual(lost.map((s) => s.master.name).sort());
      const promoted = (await events(since)).filter((e) => e.kind === 'store.master-changed');
      expect(promoted.length).toBe(lost.length);
      expect(Date.parse(fenced.wallTime)).toBeLessThan(Math.min(...promoted.map((e) => Date.parse(e.at))));
    } finally {
      await cluster.heal();
    }
    const healedAt = Date.now();
    expectNeverTwoMasters(await watch.stop(), all, 0.2);
    await expectAllSettled();
    // the lease comes back before the desired state that made its masters replicas (seed 20261204 of the soak): no
    // former master may start as one again, not even up to the address probe that another host answers for
    expect(masterStartsSince(victim, lost, healedAt - 1000)).toEqual([]);
  }, 180_000);

  it('fences the masters of a hung agent (SIGSTOP) with its independent fence process, then fails them over', async () => {
    const all = await stores();
    const victim = 'm3';
    const lost = all.filter((s) => s.master.machine === victim);
    const watch = await watchMasters(all);
    const since = Date.now();
    cluster.pauseAgent(victim);
    try {
      await waitServedByReplicas(lost);
      const fenced = JSON.parse(readFileSync(join(dir, 'agents', victim, 'fenced.json'), 'utf8')) as { wallTime: string; slots: { slot: string; killed: number }[] };
      expect(Date.parse(fenced.wallTime)).toBeGreaterThan(since);
      expect(fenced.slots.map((x) => x.slot).sort()).toEqual(lost.map((s) => s.master.name).sort());
      expect(fenced.slots.every((x) => x.killed > 0)).toBe(true);
      const promoted = (await events(since)).filter((e) => e.kind === 'store.master-changed');
      expect(promoted.length).toBe(lost.length);
      expect(Date.parse(fenced.wallTime)).toBeLessThan(Math.min(...promoted.map((e) => Date.parse(e.at))));
    } finally {
      cluster.resumeAgent(victim);
    }
    const resumedAt = Date.now();
    expectNeverTwoMasters(await watch.stop(), all, 0.2);
    await expectAllSettled();
    expect(masterStartsSince(victim, lost, resumedAt - 1000)).toEqual([]);
  }, 180_000);

  it('fails over nothing by itself when two machines are lost at once, and fails one over on --force', async () => {
    const since = Date.now();
    const all = await stores();
    const watch = await watchMasters(all);
    await Promise.all([cluster.crash('m4'), cluster.crash('m5')]);
    await waitFor('both machines down', async () => ((await machines()).filter((m) => m.state === 'down').length === 2 ? true : undefined), 20_000, 250);
    await waitFor('the critical event', async () => ((await events(since)).some((e) => e.kind === 'cluster.failover-withheld') ? true : undefined), 10_000, 250);
    await sleep(3000);
    expect(await operationsOf('failover', since)).toEqual([]);

    const refused = await cluster.slotctl(['machine', 'failover', 'm4']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(/more than automatic failover allows.*--force/);
    const forced = await cluster.slotctl(['machine', 'failover', 'm4', '--force', '--json']);
    const lost = all.filter((s) => s.master.machine === 'm4');
    const movable = lost.filter((s) => s.replica.machine !== 'm5');
    const stuck = lost.filter((s) => s.replica.machine === 'm5');
    expect(stuck.length, 'stores of m4 replicated on m5 (the layout puts one there)').toBeGreaterThan(0);
    await waitServedByReplicas(movable);
    // the store whose replica is on the other lost machine cannot move: refused, with the reason
    const ops = await operationsOf('failover', since);
    expect(ops.filter((o) => o.state === 'succeeded').map((o) => o.store).sort()).toEqual(movable.map((s) => s.name).sort());
    const refusedOps = ops.filter((x) => x.state === 'refused');
    expect(refusedOps.map((o) => o.store).sort()).toEqual(stuck.map((s) => s.name).sort());
    for (const o of refusedOps) expect(o.error).toMatch(/both machines lost/);
    expect(forced.exitCode).toBe(movable.length === lost.length ? 0 : 1);

    // Whichever of the two is heard first, the other is then the only machine down, and its stores whose replica is
    // up fail over by themselves (rightly): m5's, or m4's replicated on m5. Counted below, not prevented.
    await cluster.powerOn('m4');
    await cluster.powerOn('m5');
    await expectAllSettled();
    // the stores of the two machines were down most of the time: only the others must have been seen throughout
    expectNeverTwoMasters(await watch.stop(), all.filter((s) => s.master.machine !== 'm4' && s.master.machine !== 'm5'));
    // nothing was at risk on m4 (no mail during this test): the old masters came back as replicas by themselves
    const records = (await atRisk(true)).filter((r) => r.machine === 'm4' || r.machine === 'm5');
    const onM4 = [...new Set(records.filter((r) => r.machine === 'm4').map((r) => r.store))].sort();
    expect(onM4.filter((name) => !stuck.some((s) => s.name === name)), 'a record for every store failed over from m4 on --force').toEqual(movable.map((s) => s.name).sort());
    // a store of m4 replicated on m5 has one only if it failed over by itself once m5 was back and m4 not yet
    expect(onM4.filter((name) => !lost.some((s) => s.name === name)), 'records on m4 only for stores m4 was master of').toEqual([]);
    expect(records.length).toBeGreaterThan(0);
    expect(records.filter((r) => r.state !== 'nothing-lost'), 'nothing was at risk (no mail in this test)').toEqual([]);
  }, 240_000);

  it('leaves no sync log unaccounted for: every quarantine folder of a recovered slot is marked recovered', () => {
    const folders: string[] = [];
    for (const m of cluster.machines) {
      const root = join(dir, 'srv', m);
      for (const s of existsSync(root) ? readdirSync(root) : []) {
        const q = join(root, s, 'meta', 'quarantine');
        for (const folder of existsSync(q) ? readdirSync(q) : []) folders.push(join(q, folder));
      }
    }
    // the crash test left at least one quarantine (its first store's old master had a backlog)
    expect(folders.length).toBeGreaterThan(0);
    for (const folder of folders) expect(readdirSync(folder), folder).toContain('RECOVERED');
  });
});
