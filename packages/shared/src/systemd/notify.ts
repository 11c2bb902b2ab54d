// sd_notify without native code. Node has no unix datagram sockets, so messages go through the systemd-notify binary
// (a child of the daemon: the unit needs NotifyAccess=all). systemd-notify 252 sends, then waits on a barrier until
// PID 1 has processed the message, so PID 1 can still map the sender to the unit by its cgroup (a sender that exits
// first is ignored, even with NotifyAccess=all); --no-block would bring that race back, so every message blocks,
// keep-alives too. Without NOTIFY_SOCKET (not under systemd, or Type=simple) everything here is a no-op.
import { execa } from 'execa';
import type { Logger } from '../log.js';
import { SlotctlError } from '../errors.js';

/** systemd-notify failed or took too long (PID 1 busy: the barrier waits for it). */
export class SystemdNotifyError extends SlotctlError {
  readonly code = 'SYSTEMD_NOTIFY';
}

/** How long one systemd-notify may take: its barrier waits for PID 1, which is slow on a loaded host at boot. */
const NOTIFY_TIMEOUT_MS = 10_000;

export interface NotifierOptions {
  log: Logger;
  /** Defaults to process.env: NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID. */
  env?: NodeJS.ProcessEnv;
  /** Defaults to process.pid (WATCHDOG_PID names the process the watchdog is meant for). */
  pid?: number;
  /** Defaults to systemd-notify on PATH. */
  binary?: string;
  /** A clock in ms (tests); defaults to performance.now(). */
  now?: () => number;
}

/**
 * Half of WATCHDOG_USEC, in ms, when the watchdog is meant for this process (WATCHDOG_PID unset or this PID);
 * undefined when there is no watchdog. Half, as sd_watchdog_enabled(3) advises: one late keep-alive is not fatal.
 */
export function keepAliveInterval(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!env.NOTIFY_SOCKET || !Number.isInteger(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 2000;
}

/** One line of a notify message: no newline may split it into two assignments. */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 512);
}

export class SystemdNotifier {
  /** NOTIFY_SOCKET is set: messages are sent. */
  readonly enabled: boolean;
  /** How often keepAlive() actually sends (half the watchdog), or undefined: no watchdog. */
  readonly keepAliveMs: number | undefined;
  private readonly log: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly binary: string;
  private readonly now: () => number;
  /** Messages other than keep-alives go one after the other, in order (READY before a later STATUS). */
  private queue: Promise<void> = Promise.resolve();
  private keepAliveInFlight = false;
  private lastKeepAlive = -Infinity;
  private skipSaid = false;
  /** The newest status asked for while one was being sent (older ones are dropped, never queued). */
  private pendingStatus: string | undefined;
  private sendingStatus = false;
  private lastStatus = '';

  constructor(options: NotifierOptions) {
    this.env = options.env ?? process.env;
    this.log = options.log;
    this.binary = options.binary ?? 'systemd-notify';
    this.now = options.now ?? (() => performance.now());
    this.enabled = Boolean(this.env.NOTIFY_SOCKET);
    this.keepAliveMs = keepAliveInterval(this.env, options.pid ?? process.pid);
  }

  /** READY=1 with what the daemon is doing: it serves from now on. */
  ready(status: string): Promise<void> {
    this.lastStatus = oneLine(status);
    return this.enqueue(['READY=1', `STATUS=${this.lastStatus}`]);
  }

  /** STOPPING=1: a stop has begun (and why). */
  stopping(status: string): Promise<void> {
    this.lastStatus = oneLine(status);
    return this.enqueue(['STOPPING=1', `STATUS=${this.lastStatus}`]);
  }

  /** EXTEND_TIMEOUT_USEC: the start or stop under way needs `ms` more from now (sent again before they pass). */
  extendTimeout(ms: number, status?: string): Promise<void> {
    const fields = [`EXTEND_TIMEOUT_USEC=${Math.round(ms * 1000)}`];
    if (status !== undefined) fields.push(`STATUS=${(this.lastStatus = oneLine(status))}`);
    return this.enqueue(fields);
  }

  /** STATUS=…, only when it changed; while one is being sent only the newest waits (a burst costs two processes). */
  status(text: string): void {
    const line = oneLine(text);
    if (!this.enabled || line === (this.pendingStatus ?? this.lastStatus)) return;
    this.pendingStatus = line;
    if (this.sendingStatus) return;
    this.sendingStatus = true;
    void (async () => {
      while (this.pendingStatus !== undefined) {
        const next = this.pendingStatus;
        this.pendingStatus = undefined;
        this.lastStatus = next;
        await this.enqueue([`STATUS=${next}`]);
      }
      this.sendingStatus = false;
    })();
  }

  /**
   * WATCHDOG=1 if the watchdog is on and half of it has passed since the last one. Called from the daemon's own loop
   * (never from a timer of its own), so a loop that hangs stops the keep-alives and systemd restarts the daemon. At
   * most one systemd-notify at a time: a slow one means the next is skipped and logged, never queued behind it.
   * Returns whether one was started.
   */
  keepAlive(): boolean {
    if (this.keepAliveMs === undefined) return false;
    const now = this.now();
    if (now - this.lastKeepAlive < this.keepAliveMs) return false;
    if (this.keepAliveInFlight) {
      // tried again at the loop's next pass (not half a watchdog later: that could outlast the watchdog); said once
      if (!this.skipSaid) this.log.warn({ sinceLastMs: Math.round(now - this.lastKeepAlive) }, 'watchdog keep-alive skipped: the previous systemd-notify has not returned yet');
      this.skipSaid = true;
      return false;
    }
    this.lastKeepAlive = now;
    this.keepAliveInFlight = true;
    this.skipSaid = false;
    // a keep-alive that waits longer than the interval is given up, so that the next one can go
    void this.run(['WATCHDOG=1'], Math.min(NOTIFY_TIMEOUT_MS, this.keepAliveMs))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'watchdog keep-alive not delivered'))
      .finally(() => {
        this.keepAliveInFlight = false;
      });
    return true;
  }

  private enqueue(fields: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    const sent = this.queue.then(() => this.run(fields)).catch((err: Error) => this.log.warn({ err: err.message, fields }, 'systemd notification not delivered'));
    this.queue = sent;
    return sent;
  }

  private async run(fields: string[], timeoutMs = NOTIFY_TIMEOUT_MS): Promise<void> {
    // VAR=VALUE arguments, no shell: a status text is one argument whatever it holds
    const result = await execa(this.binary, fields, { env: this.env, extendEnv: false, timeout: timeoutMs, reject: false, stdin: 'ignore' });
    if (result.failed) throw new SystemdNotifyError(`systemd-notify ${fields.map((f) => f.split('=')[0]).join(' ')} failed: ${result.timedOut ? `no answer in ${timeoutMs} ms` : result.stderr.trim() || result.shortMessage}`);
  }
}
