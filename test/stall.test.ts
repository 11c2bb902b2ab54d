// A backlog that does not move is flagged stalled, with the reason: a replica that refuses connections, or a
// rolling sync_client that is stuck although the replica accepts them (reproduced here as in the measured recipe:
// the replica holds a mailbox under another uniqueid, and the master's sync loops on IMAP_MAILBOX_MOVED).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { deliver, imapClient } from './support/mail.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('stall');
const cluster = new LocalCluster({ dir });

const slot = (name: string) => cluster.slot(name);
const waitState = (name: string, state: string) => cluster.waitSlotState(name, state);

beforeAll(() => cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], ['st01-m1', 'st01-m2'], { stallAfter: '3s' }));

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

describe('stalled replication', () => {
  it('flags a backlog waiting for a replica that refuses connections, and clears the flag when it drains', async () => {
    // the start's own replication settled first (its epoch marker): on a busy host the master's client, in its
    // reconnect backoff since before its replica listened, was still working on it when the replica was stopped, and
    // the events began with that stall (stuck) instead of this one (CI beside two busy loops)
    await waitFor('the start to have replicated', async () => {
      const b = (await slot('st01-m1')).backlog!;
      return b.files === 0 && !b.stalled ? true : undefined;
    }, 30_000, 100);
    const before = (await cluster.client().listEvents({ store: 'st01', limit: 1 })).events.at(-1)?.id ?? 0;
    expect((await cluster.slotctl(['slot', 'stop', 'st01-m2'])).exitCode).toBe(0);
    await waitState('st01-m2', 'STOPPED');
    await deliver(`127.${NET}.3.1`, 2003, [{ user: 'amy', subject: 'waiting' }]);
    const stalled = await waitFor('the stalled flag', async () => {
      const b = (await slot('st01-m1')).backlog!;
      return b.stalled ? b : undefined;
    }, 15_000, 100);
    expect(stalled.stallReason).toMatch(new RegExp(`replica 127\\.${NET}\\.2\\.1:2005 refuses connections; backlog waiting for \\d+ s`));
    const status = await cluster.slotctl(['status']);
    // one or more files: the rolling client may have renamed `log` to `log-PID` while new changes opened a new `log`
    expect(status.stdout).toMatch(/replication stalled \([1-9]\d* log file\(s\)\): replica .* refuses connections/);

    expect((await cluster.slotctl(['slot', 'start', 'st01-m2'])).exitCode).toBe(0);
    await waitFor('the backlog to drain and the flag to clear', async () => {
      const b = (await slot('st01-m1')).backlog!;
      return b.files === 0 && !b.stalled ? true : undefined;
    }, 15_000, 100);
    // both changes are events, the start with its reason
    const kinds = await waitFor('the stall events', async () => {
      const events = (await cluster.client().listEvents({ store: 'st01', afterId: before, limit: 1000 })).events.filter((e) => e.slot === 'st01-m1' && e.kind.startsWith('slot.replication-'));
      return events.some((e) => e.kind === 'slot.replication-resumed') ? events : undefined;
    }, 10_000, 100);
    expect(kinds.map((e) => e.kind)).toEqual(['slot.replication-stalled', 'slot.replication-resumed']);
    expect(kinds[0]!.reason).toMatch(/refuses connections/);
  });

  it('flags a rolling sync_client that is stuck although the replica accepts connections, with the log line', async () => {
    // On the replica, an admin creates user/zed: a mailbox the master does not have, with its own uniqueid.
    const admin = imapClient(`127.${NET}.2.1`, 'admin');
    await admin.connect();
    await admin.mailboxCreate('user/zed');
    await admin.logout();
    // with a message in it, so that the replica will not simply replace it
    const zed = imapClient(`127.${NET}.2.1`, 'zed');
    await zed.connect();
    await zed.append('INBOX', 'Subject: only on the replica\r\n\r\nhello\r\n');
    await zed.logout();
    // The master autocreates user.zed on delivery (another uniqueid) and its rolling sync cannot push it.
    await deliver(`127.${NET}.3.1`, 2003, [{ user: 'zed', subject: 'clash' }]);
    const stalled = await waitFor('the stalled flag', async () => {
      const b = (await slot('st01-m1')).backlog!;
      return b.stalled ? b : undefined;
    }, 30_000, 200);
    expect(stalled.stallReason).toMatch(new RegExp(`no progress for \\d+ s although 127\\.${NET}\\.2\\.1:2005 accepts connections \\(rolling sync_client stuck\\?\\)`));
    expect(stalled.stallReason).toMatch(/IMAP_MAILBOX_MOVED|bailing out|SYNCERROR|IOERROR/);
    // a critical event: this loop replicates nothing else of the slot
    const stuck = await waitFor('the stuck event', async () =>
      (await cluster.client().listEvents({ store: 'st01', limit: 100 })).events.find((e) => e.kind === 'slot.replication-stuck'), 10_000, 100);
    // the loop's SYNCERROR lines (~100 a second) do not flood the events: a few per 10 s, then a count
    const events = (await cluster.client().listEvents({ store: 'st01', limit: 10_000 })).events;
    const loopLines = events.filter((e) => e.kind === 'slot.sync-error' && Date.parse(e.at) >= Date.parse(stuck.at) - 30_000);
    expect(loopLines.length).toBeLessThanOrEqual(40);
    expect(stuck.slot).toBe('st01-m1');
    expect(JSON.parse(stuck.dataJson)).toMatchObject({ severity: 'critical' });
    expect(stuck.reason).toMatch(/accepts connections \(rolling sync_client stuck\?\)/);
  });
});
