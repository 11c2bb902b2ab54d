// Watches one slot's sync directory (chokidar) and keeps its backlog current: files, bytes, mailboxes named, age
// of the oldest unreplicated change. Also the two cures for a rolling sync_client that is not making progress:
// when the replica comes (back) up, TERM the client sleeping in its reconnect backoff so cyrmaster restarts it at
// once; and when the backlog does not move although the replica accepts connections, flag it stalled.
import { existsSync } from 'node:fs';
import chokidar, { type FSWatcher } from 'chokidar';
import type { Backlog, Logger } from '@slotctl/shared';
import { BacklogReader } from './backlog-reader.js';
import { childrenNamed, connectionsTo, tcpAccepts } from '../slot/process.js';

export interface SyncWatchOptions {
  syncDir: string;
  /** The replica's address and sync port, or undefined when this slot is not a master. */
  peer: () => { ip: string; port: number } | undefined;
  /** The slot's cyrmaster PID when it runs. */
  masterPid: () => number | undefined;
  /** Recent log lines, to explain a stall. */
  lastError: () => Promise<string | undefined>;
  /** `urgent`: replication stalled or resumed, or the backlog emptied; otherwise only its size or age moved. */
  onChange: (backlog: Backlog, urgent: boolean) => void;
  log: Logger;
  stallAfterMs?: number;
  /** IDLE_LOOK_MS unless told (tests). */
  idleLookMs?: number;
}

/** How long a replica must have refused connections for its return to start a new --stall-after for the client. */
export const OUTAGE_MS = 2000;
/** A replica back from an outage wakes the rolling client unless it was woken this recently (a flapping replica). */
export const KICK_AFTER_RETURN_MS = 1000;
/** A client that merely makes no progress is woken at most this often (a kill throws its batch away). */
const KICK_IDLE_EVERY_MS = 10_000;

/**
 * How often the directory is read without a file event: while there is a backlog (its age grows, the replica may come
 * back, the client may stall), and while chokidar's events cannot be trusted; an empty backlog only waits for
 * chokidar's next event, and looks now and then in case one was missed. Reading every slot's directory every 250 ms
 * was the largest part of a master-heavy agent's CPU under mail load (18 masters: 72 looks a second, mostly empty).
 */
export const ACTIVE_LOOK_MS = 250;
export const IDLE_LOOK_MS = 2000;

/** No sync log, nothing stalled. */
export const EMPTY_BACKLOG: Readonly<Backlog> = { files: 0, bytes: 0, mailboxes: 0, mailboxNames: [], oldestChangeAgeMs: 0, stalled: false, stallReason: '' };

export class SyncWatcher {
  backlog: Backlog = { ...EMPTY_BACKLOG };
  readonly reader: BacklogReader;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;
  private lastProgressAt = performance.now();
  private lastInodes = new Set<number>();
  private peerWasUp: boolean | undefined;
  /** Since when the replica refuses connections (or does not answer), while it does. */
  private peerDownSince: number | undefined;
  /** When the replica last came back from an outage (OUTAGE_MS or longer, or any before it first accepted: see refresh). */
  private peerBackAt = -Infinity;
  /** The replica was seen accepting connections since the backlog's last progress: the client has had its chance. */
  private acceptedSinceProgress = false;
  private lastKickAt = -Infinity;
  private busy = false;
  /** A look was asked for while one ran: one more follows it (a file event is never dropped). */
  private again = false;
  private stopped = false;
  /** chokidar's events can be trusted to wake a look: the directory existed when the watch began and no watch error. */
  private eventsTrusted = false;

  constructor(private readonly options: SyncWatchOptions) {
    this.reader = new BacklogReader(options.syncDir);
  }

  start(): void {
    this.stopped = false;
    // a directory created after the watch began is not watched inside (chokidar watches its parent); nor is one whose
    // watch failed (inotify's limit): those are looked at every ACTIVE_LOOK_MS
    this.eventsTrusted = existsSync(this.options.syncDir);
    this.watcher = chokidar.watch(this.options.syncDir, { depth: 0, ignoreInitial: false, awaitWriteFinish: false });
    const soon = () => {
      if (!this.pending && !this.stopped) this.pending = setTimeout(() => void this.refresh(), 10);
    };
    this.watcher.on('all', soon);
    this.watcher.on('error', (err) => {
      this.eventsTrusted = false;
      this.options.log.warn({ err: (err as Error).message }, 'sync dir watch error: looking every 250 ms instead');
    });
    // each look schedules the next one (ACTIVE_LOOK_MS or IDLE_LOOK_MS)
    void this.refresh();
  }

  private scheduleLook(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const active = Number(this.backlog.files) > 0 || this.backlog.stalled || !this.eventsTrusted;
    this.timer = setTimeout(() => void this.refresh(), active ? ACTIVE_LOOK_MS : (this.options.idleLookMs ?? IDLE_LOOK_MS));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.pending);
    await this.watcher?.close();
  }

  /** Re-reads the directory now (after a replay, for instance). */
  async refresh(): Promise<Backlog> {
    this.pending = undefined;
    if (this.stopped) return this.backlog;
    if (this.busy) {
      this.again = true;
      return this.backlog;
    }
    this.busy = true;
    try {
      const summary = await this.reader.read();
      const now = performance.now();
      const inodes = this.reader.inodes();
      const finishedBatch = [...this.lastInodes].some((ino) => !inodes.has(ino));
      // Progress: the directory empty, a batch finished, or a backlog that began since the last look — an empty
      // directory is looked at only every IDLE_LOOK_MS, so a new backlog is blamed from the look that saw it, never
      // from an empty look seconds old (not from the files' birth times: the soak steps the agent's clock only)
      const began = Number(this.backlog.files) === 0;
      if (summary.files === 0 || finishedBatch || began) {
        this.lastProgressAt = now;
        this.acceptedSinceProgress = false;
      }
      this.lastInodes = inodes;
      let stalled = false;
      let stallReason = '';
      const peer = this.options.peer();
      if (peer && summary.files > 0) {
        const idleMs = now - this.lastProgressAt;
        // A backlog that moves proves the replica up. Probing it anyway costs the replica's cyrmaster a sync_server
        // connection every 250 ms per slot under load, so knock only while it is not moving or was seen down.
        const peerUp = idleMs > 1000 || this.peerWasUp !== true ? await tcpAccepts(peer.ip, peer.port, 200) : true;
        const cameBack = peerUp && this.peerWasUp === false;
        // a look that timed out once (a busy host) is no outage: it must not hide a stuck client by resetting the
        // time it is blamed for. But a backlog that has not yet seen its replica accept cannot have failed it yet
        // (a master's first backlog while its replica starts): it is the client's only from the replica's return,
        // however short the outage
        const firstChance = !this.acceptedSinceProgress;
        if (cameBack && this.peerDownSince !== undefined && (now - this.peerDownSince >= OUTAGE_MS || firstChance)) this.peerBackAt = now;
        if (peerUp) this.acceptedSinceProgress = true;
        this.peerDownSince = peerUp ? undefined : (this.peerDownSince ?? now);
        this.peerWasUp = peerUp;
        // Only a client in its reconnect backoff is woken: one connected to the replica is working (or waiting for a
        // slow replica), and a kill throws its batch away — on a host so slow that a batch took over 2 s, kills every
        // 10 s kept a new master's marker from reaching its replica for 94 s. A replica back from an outage is worth
        // a wake even soon after the last one (a replica restarted 6 s after one waited 4 s more for the client's
        // backoff, and was called stalled meanwhile: CI, test/stall.test.ts), unless the client is already on it.
        const sinceKick = now - this.lastKickAt;
        const due = cameBack ? sinceKick > KICK_AFTER_RETURN_MS : sinceKick > KICK_IDLE_EVERY_MS && idleMs > 2000;
        if (peerUp && due && (await connectionsTo(peer.ip, peer.port)) === 0) this.kickSyncClient(cameBack ? 'replica is back' : `no progress for ${idleMs} ms and no connection to the replica`);
        // A sync_client can only be blamed for the time the replica accepted connections: a replica back from an
        // outage (OUTAGE_MS or more) gets a whole --stall-after to be caught up with before it is called stuck (a
        // switchover asked the moment it came back was refused for a stall that was the outage's, 2026-12-06).
        const blamedMs = peerUp ? now - Math.max(this.lastProgressAt, this.peerBackAt) : idleMs;
        const stallAfter = this.options.stallAfterMs ?? 30_000;
        if (blamedMs > stallAfter) {
          stalled = true;
          const logLine = peerUp ? ((await this.options.lastError()) ?? '') : '';
          const since = blamedMs < idleMs ? `, ${Math.round(blamedMs / 1000)} s of them since the replica came back,` : '';
          stallReason = peerUp
            ? `no progress for ${Math.round(idleMs / 1000)} s${since} although ${peer.ip}:${peer.port} accepts connections (rolling sync_client stuck?)${logLine ? `: ${logLine}` : ''}`
            : `replica ${peer.ip}:${peer.port} refuses connections; backlog waiting for ${Math.round(idleMs / 1000)} s`;
        }
      } else {
        this.peerWasUp = peer ? undefined : this.peerWasUp;
        this.peerDownSince = undefined;
      }
      const next: Backlog = { ...summary, stalled, stallReason };
      const changed =
        next.files !== this.backlog.files ||
        next.bytes !== this.backlog.bytes ||
        next.mailboxes !== this.backlog.mailboxes ||
        next.stalled !== this.backlog.stalled ||
        // ages are reported at most once a second
        Math.floor(Number(next.oldestChangeAgeMs) / 1000) !== Math.floor(Number(this.backlog.oldestChangeAgeMs) / 1000);
      // a backlog that began is news only in its size (the next paced report); one that emptied ends a wait (a
      // switchover's verify step waits for it)
      const urgent = next.stalled !== this.backlog.stalled || (Number(next.files) === 0 && Number(this.backlog.files) > 0);
      this.backlog = next;
      if (changed) this.options.onChange(next, urgent);
      return next;
    } catch (err) {
      // a look that failed (a permission, a disk error) must never take the agent down: report on the next one
      this.options.log.warn({ err: (err as Error).message, syncDir: this.options.syncDir }, 'could not read the sync directory');
      return this.backlog;
    } finally {
      this.busy = false;
      if (this.again && !this.stopped) {
        this.again = false;
        setImmediate(() => void this.refresh());
      } else this.scheduleLook();
    }
  }

  /** TERM the rolling sync_client: cyrmaster restarts it, skipping its reconnect backoff. */
  private kickSyncClient(why: string): void {
    const master = this.options.masterPid();
    if (!master) return;
    this.lastKickAt = performance.now();
    const clients = childrenNamed(master, 'sync_client');
    if (clients.length === 0) {
      // no rolling client to wake: cyrmaster re-reads cyrus.conf on SIGHUP and starts the DAEMON entries it lacks
      this.options.log.warn({ master, why }, 'no rolling sync_client under cyrmaster: SIGHUP to have it started again');
      try {
        process.kill(master, 'SIGHUP');
      } catch {
        // gone meanwhile
      }
    }
    for (const pid of clients) {
      try {
        process.kill(pid, 'SIGTERM');
        this.options.log.info({ pid, why }, 'restarted the rolling sync_client');
      } catch {
        // gone meanwhile
      }
    }
  }
}
