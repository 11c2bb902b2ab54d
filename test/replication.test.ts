// Real Cyrus, real mail: a store of two slots on two loopback agents. Mail delivered by LMTP to the master's
// service IP is read back by IMAP from the replica; a stopped replica makes the backlog grow and a restarted one
// drains it; replay after stopping a master leaves the replica complete; a failed replay keeps every file; crashes
// restart with backoff and a crash loop ends in failed.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { slotLayout } from '../packages/agent/src/slot/layout.js';
import { replaySyncLogs } from '../packages/agent/src/sync/replay.js';
import { replayOrder } from '../packages/agent/src/sync/backlog.js';
import { pidAlive } from '../packages/agent/src/slot/process.js';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { expectSameMail } from './support/same-mail.js';
import { deliver, imapClient, inboxCounts, inboxSubjects, type Delivered } from './support/mail.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const MASTER_SERVICE = `127.${NET}.3.1`;
const MASTER_SLOT_IP = `127.${NET}.1.1`;
const REPLICA_SLOT_IP = `127.${NET}.2.1`;
const IMAP = 1143;
const LMTP = 2003;
const REPLICA_SYNC = { ip: REPLICA_SLOT_IP, port: 2005 };

const dir = tempDir('replication');
const cluster = new LocalCluster({ dir });
const log = createLogger('test', { level: 'warn' });
const masterMeta = join(dir, 'srv', 'm1', 're01', 'meta');
const syncDir = join(masterMeta, 'conf', 'sync');
const masterLayout = slotLayout(join(dir, 'srv', 'm1', 're01', 'data'), masterMeta);
const users = ['alice', 'bob', 'carol', 'dave'];
const sent: Record<string, string[]> = {};

function messages(prefix: string, perUser: Record<string, number>): Delivered[] {
  const out: Delivered[] = [];
  for (const [user, n] of Object.entries(perUser)) {
    for (let i = 0; i < n; i++) {
      const subject = `${prefix} ${user} ${i}`;
      out.push({ user, subject });
      (sent[user] ??= []).push(subject);
    }
  }
  return out;
}

const slot = (name: string) => cluster.slot(name);
const waitState = (name: string, state: string) => cluster.waitSlotState(name, state);

const syncFiles = () => readdirSync(syncDir).filter((f) => f.startsWith('log')).sort();
/** Master and replica hold the same mail: every user's every folder, by Message-ID, flags and bytes. */
const expectReplicaMatches = () => expectSameMail([{ name: `${PREFIX}01`, master: MASTER_SERVICE, replica: REPLICA_SLOT_IP }], { users: Object.keys(sent) });

// 8 s: far above a slot's start here (1-2 s, beside busy loops too), so that only the deaf start below times out
beforeAll(() => cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], ['re01-m1', 're01-m2'], { readyTimeout: '8s' }));

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

// Several tests here run 5-8 slotctl processes (each 7-12 s on a busy host: 2 cores, other tests, busy loops) besides
// their waits: the slotctl replay test took 44 s of the default 60.
describe('replication with real Cyrus and real mail', { timeout: 180_000 }, () => {
  it('delivers 100 messages to several mailboxes on the master and reads them all back from the replica', async () => {
    await deliver(MASTER_SERVICE, LMTP, messages('first', { alice: 25, bob: 25, carol: 25, dave: 25 }));
    await waitFor('the replica to have every message', async () => {
      const counts = await inboxCounts(REPLICA_SLOT_IP, IMAP, users);
      return users.every((u) => counts[u] === 25) ? true : undefined;
    }, 30_000, 200);
    for (const user of users) expect(await inboxSubjects(REPLICA_SLOT_IP, IMAP, user)).toEqual([...sent[user]!].sort());
    await waitFor('an empty backlog', async () => ((await slot('re01-m1')).backlog?.files === 0 ? true : undefined), 30_000);
    await expectReplicaMatches();
  });

  it('grows the backlog while the replica is stopped and drains it when the replica is back', async () => {
    expect((await cluster.slotctl(['slot', 'stop', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'STOPPED');
    await deliver(MASTER_SERVICE, LMTP, messages('second', { alice: 10, erin: 10 }));
    // a flag changed on the master while the replica is away must reach it too
    const client = imapClient(MASTER_SERVICE, 'alice');
    await client.connect();
    try {
      await client.mailboxOpen('INBOX');
      expect(await client.messageFlagsAdd('1', ['\\Flagged'])).toBe(true);
    } finally {
      await client.logout();
    }
    const grown = await waitFor('the backlog to name both mailboxes', async () => {
      const b = (await slot('re01-m1')).backlog!;
      return b.files > 0 && b.mailboxes >= 2 ? b : undefined;
    }, 10_000);
    expect(Number(grown.bytes)).toBeGreaterThan(0);
    // the age of the oldest unreplicated change keeps growing while nothing replicates
    // (compared with the first sighting, not a fixed age: on a slow run that one may already be over a second old)
    const older = await waitFor('the oldest change to have aged since first seen', async () => {
      const b = (await slot('re01-m1')).backlog!;
      return Number(b.oldestChangeAgeMs) > Math.max(1000, Number(grown.oldestChangeAgeMs)) ? b : undefined;
    }, 10_000, 100);
    expect(Number(older.oldestChangeAgeMs)).toBeGreaterThan(Number(grown.oldestChangeAgeMs));

    const restartedAt = Date.now();
    expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
    await waitFor('the backlog to drain', async () => ((await slot('re01-m1')).backlog?.files === 0 ? true : undefined), 30_000, 50);
    const drainedAfter = Date.now() - restartedAt;
    // The rolling sync_client was asleep in its reconnect backoff (15-60 s); the agent woke it. (Under full CPU
    // load this took up to 7 s; a client left asleep would take at least 15 s.)
    console.log(`backlog drained ${drainedAfter} ms after slotctl slot start of the replica`);
    expect(drainedAfter).toBeLessThan(12_000);
    const counts = await inboxCounts(REPLICA_SLOT_IP, IMAP, [...users, 'erin']);
    expect(counts).toEqual({ alice: 35, bob: 25, carol: 25, dave: 25, erin: 10 });
    const [same] = await expectReplicaMatches();
    expect(same!.master.alice!.INBOX!.filter((m) => m.flags.includes('\\Flagged'))).toHaveLength(1);
  });

  it('keeps every sync log when a replay fails (replica down)', async () => {
    expect((await cluster.slotctl(['slot', 'stop', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'STOPPED');
    await deliver(MASTER_SERVICE, LMTP, messages('third', { bob: 5, frank: 5 }));
    await waitFor('a backlog', async () => ((await slot('re01-m1')).backlog!.files > 0 ? true : undefined), 10_000);
    expect((await cluster.slotctl(['slot', 'stop', 're01-m1'])).exitCode).toBe(0);
    await waitState('re01-m1', 'STOPPED');
    const before = syncFiles().map((f) => [f, statSync(join(syncDir, f)).size]);
    expect(before.length).toBeGreaterThan(0);
    const result = await replaySyncLogs(masterLayout, REPLICA_SYNC, log, 30_000);
    expect(result.ok).toBe(false);
    // the first file in replay order (log-run, then failed runs log-<PID>, then log) is the one that failed
    expect(result.failedFile).toBe(replayOrder(before.map(([f]) => f as string))[0]);
    expect(result.error).toBe(`replica ${REPLICA_SLOT_IP}:2005 refuses connections`);
    expect(syncFiles().map((f) => [f, statSync(join(syncDir, f)).size])).toEqual(before);
  });

  it('replays the leftover logs of a stopped master so the replica is complete and the files are gone', async () => {
    expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'SERVING');
    const result = await replaySyncLogs(masterLayout, REPLICA_SYNC, log, 30_000);
    expect(result).toMatchObject({ ok: true, remaining: [] });
    expect(result.replayed.length).toBeGreaterThan(0);
    expect(syncFiles()).toEqual([]);
    const counts = await inboxCounts(REPLICA_SLOT_IP, IMAP, ['bob', 'frank']);
    expect(counts).toEqual({ bob: 30, frank: 5 });
    expect(await inboxSubjects(REPLICA_SLOT_IP, IMAP, 'frank')).toEqual([...sent.frank!].sort());
    // the agent's watcher sees the directory empty
    await waitFor('the reported backlog to be empty', async () => ((await slot('re01-m1')).backlog?.files === 0 ? true : undefined), 5000);
    expect((await cluster.slotctl(['slot', 'start', 're01-m1'])).exitCode).toBe(0);
    await waitState('re01-m1', 'SERVING');
    await expectReplicaMatches();
  });

  it('replays through slotctl slot replay: refused while running, failed and kept while the replica is down, then complete', async () => {
    expect((await cluster.slotctl(['slot', 'stop', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'STOPPED');
    await deliver(MASTER_SERVICE, LMTP, messages('fourth', { gus: 3 }));
    await waitFor('a backlog', async () => ((await slot('re01-m1')).backlog!.files > 0 ? true : undefined), 10_000);

    const running = await cluster.slotctl(['slot', 'replay', 're01-m1', '--wait']);
    expect(running.exitCode).toBe(1);
    expect(running.stderr).toMatch(/slot re01-m1 is not stopped: replay runs only while its cyrmaster is stopped\n\s+hint: slotctl slot stop re01-m1 first/);

    expect((await cluster.slotctl(['slot', 'stop', 're01-m1'])).exitCode).toBe(0);
    await waitState('re01-m1', 'STOPPED');
    const kept = syncFiles();
    const failed = await cluster.slotctl(['slot', 'replay', 're01-m1', '--wait']);
    expect(failed.exitCode).toBe(1);
    expect(failed.stdout).toMatch(new RegExp(`replay FAILED at ${replayOrder(kept)[0]}: replica ${REPLICA_SLOT_IP.replaceAll('.', '\\.')}:2005 refuses connections; that file and the rest are kept`));
    expect(syncFiles()).toEqual(kept);

    expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'SERVING');
    const done = await cluster.slotctl(['slot', 'replay', 're01-m1', '--wait', '--json']);
    expect(done.exitCode, done.stdout + done.stderr).toBe(0);
    const result = JSON.parse(done.stdout) as { ok: boolean; replayed: string[] };
    expect(result).toMatchObject({ ok: true, replayed: replayOrder(kept) });
    expect(syncFiles()).toEqual([]);
    expect(await inboxSubjects(REPLICA_SLOT_IP, IMAP, 'gus')).toEqual([...sent.gus!].sort());
    const events = (await cluster.client().listEvents({ store: 're01', limit: 20 })).events.filter((e) => e.kind === 'slot.replay-requested');
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect((await cluster.slotctl(['slot', 'show', 're01-m1'])).stdout).toMatch(/last replay ok, \d+ file\(s\)/);

    expect((await cluster.slotctl(['slot', 'start', 're01-m1'])).exitCode).toBe(0);
    await waitState('re01-m1', 'SERVING');
    await expectReplicaMatches();
  });

  it('turns an IOERROR in a slot\'s Cyrus log into a slot event', async () => {
    // A line logged through the real /dev/log with the slot's syslog tag, as Cyrus's sync_client does.
    const marker = `IOERROR: test marker ${Date.now()}`;
    await execa('logger', ['-u', '/dev/log', '-t', 'slot-re01-m1/sync_client', '-p', 'mail.err', marker]);
    const event = await waitFor('the io-error event', async () => {
      const events = (await cluster.client().listEvents({ store: 're01', limit: 50 })).events;
      return events.find((e) => e.kind === 'slot.io-error' && e.reason.includes(marker));
    }, 10_000, 100);
    expect(event).toMatchObject({ slot: 're01-m1', machine: 'm1', epoch: 1 });
    await waitFor('the line in slotctl slot logs', async () => ((await cluster.slotctl(['slot', 'logs', 're01-m1'])).stdout.includes(marker) ? true : undefined), 10_000, 200);
  });

  it('restarts a cyrmaster killed with -9, with backoff, and reports the crash', async () => {
    const before = await slot('re01-m2');
    process.kill(before.pid, 'SIGKILL');
    await waitFor('a new cyrmaster', async () => {
      const s = await slot('re01-m2');
      return s.state === 'SERVING' && s.pid !== before.pid && s.pid !== 0 ? s : undefined;
    }, 15_000, 50);
    const after = await slot('re01-m2');
    expect(after.crashesInWindow).toBe(1);
    expect(after.lastError).toMatch(/cyrmaster exited with signal SIGKILL/);
  });

  it('gives up after 5 crashes in a minute (failed, with the reason) and runs again on slotctl slot start', async () => {
    let lastPid = (await slot('re01-m2')).pid;
    for (let i = 0; i < 4; i++) {
      process.kill(lastPid, 'SIGKILL');
      if (i === 3) break;
      const next = await waitFor(`restart ${i + 2}`, async () => {
        const s = await slot('re01-m2');
        return s.state === 'SERVING' && s.pid && s.pid !== lastPid ? s.pid : undefined;
      }, 30_000, 50);
      lastPid = next;
    }
    await waitState('re01-m2', 'FAILED');
    const failed = await slot('re01-m2');
    expect(failed.stateReason).toMatch(/too many crashes.*5 crashes in 60 s/);
    expect(failed.pid).toBe(0);
    const status = await cluster.slotctl(['status']);
    expect(status.exitCode).toBe(3);
    expect(status.stdout).toMatch(/replica slot re01-m2 on m2 is failed: cyrmaster exited with signal SIGKILL/);

    // slot start alone (no stop first) makes it try again
    expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'SERVING');
    expect((await slot('re01-m2')).crashesInWindow).toBe(0);
  });

  it('names the process holding a slot\'s port and starts no cyrmaster, then serves once the port is free (no agent restart)', async () => {
    expect((await cluster.slotctl(['slot', 'stop', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'STOPPED');
    // a stray listener on the replica's IMAP port: before, cyrmaster started deaf and was killed at the ready timeout
    const stray = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => stray.once('error', reject).listen(IMAP, REPLICA_SLOT_IP, resolve));
    try {
      expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
      const refused = await waitFor('the start to be refused by the check', async () => {
        const s = await slot('re01-m2');
        return s.lastError.includes(`${REPLICA_SLOT_IP}:${IMAP} is taken by pid ${process.pid}`) ? s : undefined;
      }, 60_000, 100);
      expect(refused.state).toBe('FAILED');
      expect(refused.crashesInWindow).toBe(0);
      expect(refused.pid).toBeFalsy();
    } finally {
      await new Promise((resolve) => stray.close(resolve));
    }
    await waitFor('the slot to serve once its port is free', async () => ((await slot('re01-m2')).state === 'SERVING' ? true : undefined), 60_000, 100);
  });

  it('kills and restarts a cyrmaster that does not greet within the ready timeout, and serves again', async () => {
    expect((await cluster.slotctl(['slot', 'stop', 're01-m2'])).exitCode).toBe(0);
    await waitState('re01-m2', 'STOPPED');
    // a deaf start: the slot's cyrmaster is stopped (SIGSTOP) the moment it appears, before it can bind or greet
    const root = join(dir, 'srv', 'm2', 're01');
    let deafPid = 0;
    const watch = (async () => {
      const deadline = Date.now() + 30_000;
      while (!deafPid && Date.now() < deadline) {
        for (const entry of readdirSync('/proc')) {
          if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
          let cmd = '';
          try {
            cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
          } catch {
            continue;
          }
          if (cmd.includes(root) && /(^|\/)(master|cyrmaster|setpriv)\0/.test(cmd)) {
            process.kill(Number(entry), 'SIGSTOP');
            deafPid = Number(entry);
            break;
          }
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    expect((await cluster.slotctl(['slot', 'start', 're01-m2'])).exitCode).toBe(0);
    await watch;
    expect(deafPid, 'the cyrmaster was never seen starting').toBeGreaterThan(0);
    const crashed = await waitFor('the deaf start to be judged', async () => {
      const s = await slot('re01-m2');
      return s.crashesInWindow >= 1 && /did not answer within 8000 ms/.test(s.lastError) ? s : undefined;
    }, 60_000, 100);
    expect(crashed.lastError).toMatch(new RegExp(`IMAP on ${REPLICA_SLOT_IP.replaceAll('.', '\\.')}:${IMAP} did not answer within 8000 ms \\(cyrmaster pid ${deafPid} running\\)`));
    // killed with its group (a stopped process dies of SIGKILL too), not left holding the slot's other ports
    await waitFor('the deaf cyrmaster to be gone', async () => (pidAlive(deafPid) ? undefined : true), 10_000, 50);
    const served = await waitFor('a cyrmaster that serves', async () => {
      const s = await slot('re01-m2');
      return s.state === 'SERVING' && s.pid && s.pid !== deafPid ? s : undefined;
    }, 60_000, 100);
    // and it is the replica again: mail delivered to the master reaches it
    await deliver(MASTER_SERVICE, LMTP, messages('after a deaf start', { alice: 2 }));
    await waitFor('the replica to catch up', async () => ((await slot('re01-m1')).backlog?.files === 0 ? true : undefined), 30_000, 100);
    await expectReplicaMatches();
  });
});
