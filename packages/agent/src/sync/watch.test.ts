// The stall flag with a real sync directory and a real TCP port for the replica: refused, then listening.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, type Backlog } from '@slotctl/shared';
import { waitFor } from '../../../../tools/local-cluster.js';
import { freePort } from '../../../../tools/ports.js';
import { childrenNamed } from '../slot/process.js';
import { OUTAGE_MS, SyncWatcher } from './watch.js';

const STALL_AFTER_MS = 600;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listen(port: number): Promise<Server> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return server;
}

const close = (server: Server) => new Promise<void>((r) => server.close(() => r()));

const until = (what: string, check: () => boolean) => waitFor(what, () => check() || undefined, 10_000, 20);

describe('SyncWatcher', () => {
  it('blames a stall on the sync_client only for the time the replica has been accepting connections', async () => {
    const syncDir = mkdtempSync(join(tmpdir(), 'slotctl-watch-'));
    cleanups.push(() => rmSync(syncDir, { recursive: true, force: true }));
    writeFileSync(join(syncDir, 'log'), 'APPEND user.alice\n');
    const port = await freePort();
    const seen: Backlog[] = [];
    const watcher = new SyncWatcher({
      syncDir,
      peer: () => ({ ip: '127.0.0.1', port }),
      masterPid: () => undefined, // no cyrmaster: nothing to wake
      lastError: async () => 'MAILBOX user.alice: bailing out',
      onChange: (b) => void seen.push(b),
      log: createLogger('test', { level: 'silent' }),
      stallAfterMs: STALL_AFTER_MS,
    });
    watcher.start();
    cleanups.push(() => watcher.stop());

    // the replica refuses connections: stalled once --stall-after has passed, the outage named
    await until('a stall with the replica refusing', () => watcher.backlog.stalled === true && /refuses/.test(watcher.backlog.stallReason ?? ''));
    expect(watcher.backlog.stallReason).toMatch(new RegExp(`^replica 127\\.0\\.0\\.1:${port} refuses connections; backlog waiting for \\d+ s$`));
    await new Promise((r) => setTimeout(r, OUTAGE_MS)); // an outage, not a look that timed out

    // it comes back: no longer stalled at once, although the backlog has not moved for longer than --stall-after
    let server = await listen(port);
    cleanups.push(() => (server.listening ? close(server) : undefined));
    const cameBackAt = seen.length;
    await until('the stall flag to clear', () => !watcher.backlog.stalled);
    expect(seen.slice(cameBackAt).find((b) => !b.stalled)?.files).toBe(1);

    // and stalled again, now the client's fault, when nothing moves for --stall-after more
    await until('a stall with the replica accepting', () => watcher.backlog.stalled === true && /accepts/.test(watcher.backlog.stallReason ?? ''));
    expect(watcher.backlog.stallReason).toMatch(/^no progress for \d+ s, \d+ s of them since the replica came back, although 127\.0\.0\.1:\d+ accepts connections \(rolling sync_client stuck\?\): MAILBOX user\.alice: bailing out$/);

    // a blip shorter than an outage (a look that timed out on a busy host) does not excuse the client again
    const beforeBlip = seen.length;
    await close(server);
    await until('the blip to be seen', () => /refuses/.test(watcher.backlog.stallReason ?? ''));
    server = await listen(port);
    await until('the replica to be seen back', () => /accepts/.test(watcher.backlog.stallReason ?? ''));
    await new Promise((r) => setTimeout(r, 600));
    expect(seen.slice(beforeBlip).every((b) => b.stalled)).toBe(true);

    // progress (the batch's file gone) ends it
    rmSync(join(syncDir, 'log'));
    await until('the backlog to empty', () => watcher.backlog.files === 0);
    expect(watcher.backlog.stalled).toBe(false);
  });

  it('blames a backlog that began while the replica refused only from its return, however short the outage', async () => {
    const syncDir = mkdtempSync(join(tmpdir(), 'slotctl-watch-'));
    cleanups.push(() => rmSync(syncDir, { recursive: true, force: true }));
    writeFileSync(join(syncDir, 'log'), 'APPEND user.alice\n');
    const port = await freePort(); // the replica still starting: refused
    const watcher = new SyncWatcher({
      syncDir,
      peer: () => ({ ip: '127.0.0.1', port }),
      masterPid: () => undefined,
      lastError: async () => undefined,
      onChange: () => undefined,
      log: createLogger('test', { level: 'silent' }),
      stallAfterMs: STALL_AFTER_MS,
    });
    watcher.start();
    cleanups.push(() => watcher.stop());
    // back well within --stall-after and within OUTAGE_MS of the first look: the client had no chance before
    await new Promise((r) => setTimeout(r, STALL_AFTER_MS / 2));
    const server = await listen(port);
    cleanups.push(() => close(server));
    const backAt = performance.now();
    // the client gets a whole --stall-after from then (earlier, it was blamed from the backlog's first look)
    await until('a stall with the replica accepting', () => watcher.backlog.stalled === true);
    expect(performance.now() - backAt).toBeGreaterThanOrEqual(STALL_AFTER_MS);
    expect(watcher.backlog.stallReason).toMatch(/accepts connections/);
  });

  it('wakes the rolling client each time the replica comes back from an outage, even soon after the last wake', async () => {
    const syncDir = mkdtempSync(join(tmpdir(), 'slotctl-watch-'));
    cleanups.push(() => rmSync(syncDir, { recursive: true, force: true }));
    writeFileSync(join(syncDir, 'log'), 'APPEND user.alice\n');
    // a stand-in cyrmaster: starts its "sync_client" (a copy of sleep) again whenever it ends, as cyrmaster does
    copyFileSync('/bin/sleep', join(syncDir, 'sync_client'));
    const master = spawn('sh', ['-c', 'while :; do "$0" 600; done', join(syncDir, 'sync_client')], { stdio: 'ignore' });
    cleanups.push(() => {
      for (const pid of childrenNamed(master.pid!, 'sync_client')) process.kill(pid, 'SIGKILL');
      master.kill('SIGKILL');
    });
    const clients = new Set<number>();
    const client = () => childrenNamed(master.pid!, 'sync_client')[0];
    await until('the first sync_client', () => client() !== undefined);
    clients.add(client()!);
    const port = await freePort();
    const watcher = new SyncWatcher({
      syncDir,
      peer: () => ({ ip: '127.0.0.1', port }),
      masterPid: () => master.pid,
      lastError: async () => undefined,
      onChange: () => undefined,
      log: createLogger('test', { level: 'silent' }),
      stallAfterMs: 60_000,
    });
    watcher.start();
    cleanups.push(() => watcher.stop());
    const woken = async (what: string, within: number) => {
      await waitFor(what, () => {
        const pid = client();
        return pid !== undefined && !clients.has(pid) ? clients.add(pid) : undefined;
      }, within, 20);
    };

    // an outage, then the replica back: woken
    await new Promise((r) => setTimeout(r, OUTAGE_MS + 300));
    let server = await listen(port);
    cleanups.push(() => (server.listening ? close(server) : undefined));
    await woken('the client woken when the replica is back', 3000);
    // down again for an outage and back ~3 s after that wake (the stall test: a replica restarted 6 s after one):
    // woken again at once, not only 10 s after the last wake (the old rule left the client in its backoff)
    await close(server);
    await new Promise((r) => setTimeout(r, OUTAGE_MS + 300));
    server = await listen(port);
    await woken('the client woken again when the replica is back again', 3000);
    expect(clients.size).toBe(3);
  });

  it('reads an empty sync directory only on file events, and notices a new sync log by its event', async () => {
    const syncDir = mkdtempSync(join(tmpdir(), 'slotctl-watch-'));
    cleanups.push(() => rmSync(syncDir, { recursive: true, force: true }));
    const changes: { files: number; urgent: boolean }[] = [];
    const watcher = new SyncWatcher({
      syncDir,
      peer: () => undefined, // a replica: no peer to probe
      masterPid: () => undefined,
      lastError: async () => undefined,
      onChange: (b, urgent) => void changes.push({ files: Number(b.files), urgent }),
      log: createLogger('test', { level: 'silent' }),
      idleLookMs: 60_000, // no look of its own in this test: only chokidar's events can wake it
    });
    let reads = 0;
    const read = watcher.reader.read.bind(watcher.reader);
    watcher.reader.read = (now?: number) => {
      reads++;
      return read(now);
    };
    watcher.start();
    cleanups.push(() => watcher.stop());
    await new Promise((r) => setTimeout(r, 1500));
    // the first look and at most one for chokidar's initial scan (every 250 ms before: 6 or more)
    expect(reads).toBeLessThanOrEqual(2);

    writeFileSync(join(syncDir, 'log'), 'APPEND user.alice\n');
    await until('the new sync log seen', () => watcher.backlog.files === 1);
    // a backlog that began is only news of its size; its emptying ends waits (a switchover's verify step)
    expect(changes.at(-1)).toEqual({ files: 1, urgent: false });
    rmSync(join(syncDir, 'log'));
    await until('the emptied backlog seen', () => watcher.backlog.files === 0);
    expect(changes.at(-1)).toEqual({ files: 0, urgent: true });
  });

  /** A watcher on a fresh directory, counting its looks. */
  function counted(o: Partial<ConstructorParameters<typeof SyncWatcher>[0]> = {}) {
    const syncDir = mkdtempSync(join(tmpdir(), 'slotctl-watch-'));
    cleanups.push(() => rmSync(syncDir, { recursive: true, force: true }));
    const seen: Backlog[] = [];
    const watcher = new SyncWatcher({
      syncDir,
      peer: () => undefined,
      masterPid: () => undefined,
      lastError: async () => undefined,
      onChange: (b) => void seen.push(b),
      log: createLogger('test', { level: 'silent' }),
      ...o,
    });
    const looks = { n: 0 };
    const read = watcher.reader.read.bind(watcher.reader);
    watcher.reader.read = (now?: number) => {
      looks.n++;
      return read(now);
    };
    cleanups.push(() => watcher.stop());
    return { syncDir, watcher, looks, seen };
  }

  it('looks at an empty directory on its own now and then, follows a look asked during one, and stops looking', async () => {
    const { watcher, looks } = counted({ idleLookMs: 200 });
    watcher.start();
    await until('three looks without any file event', () => looks.n >= 3);
    // asked twice at once: the second is not dropped but follows the first
    const before = looks.n;
    await Promise.all([watcher.refresh(), watcher.refresh()]);
    await until('the look asked during a look', () => looks.n >= before + 2);
    await watcher.stop();
    const stoppedAt = looks.n;
    await watcher.refresh();
    await new Promise((r) => setTimeout(r, 600));
    expect(looks.n).toBe(stoppedAt);
  });

  it('blames a backlog that began after a long idle only from when it was seen, not from the last empty look', async () => {
    const port = await freePort(); // nothing listens: the replica refuses
    const { syncDir, watcher, seen } = counted({ peer: () => ({ ip: '127.0.0.1', port }), stallAfterMs: STALL_AFTER_MS, idleLookMs: 60_000 });
    watcher.start();
    await new Promise((r) => setTimeout(r, 3 * STALL_AFTER_MS)); // idle for longer than --stall-after
    writeFileSync(join(syncDir, 'log'), 'APPEND user.alice\n');
    await until('the new sync log seen', () => seen.some((b) => b.files === 1));
    expect(seen.find((b) => b.files === 1)?.stalled).toBe(false);
    // and it is blamed once --stall-after has really passed
    await until('stalled after --stall-after', () => watcher.backlog.stalled === true);
  });
});
