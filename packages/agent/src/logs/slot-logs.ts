// Each slot's Cyrus log lines, as filed by slot-syslogd under DIR/SLOT.log: the last N for reports and
// `slotctl slot logs`, and notable new lines (SYNCERROR, IOERROR, fatal errors) as they arrive.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { coalesced, type Logger } from '@slotctl/shared';
import { isNotable } from './syslog-format.js';
import { SYSLOGD_PID_FILE, socketIsLive } from './syslogd.js';
import { pidAlive } from '../slot/process.js';

/** Where slot-syslogd files lines without a slot's tag (slot-syslogd.ts `fileFor`). */
const UNTAGGED = 'other';

/** How far a slot's log file (by inode) has been read. */
export interface LogPosition {
  ino: number;
  offset: number;
}

const READ_CHUNK = 256 * 1024;

export class SlotLogs {
  private offsets = new Map<string, LogPosition>();
  /** Reports ask for the tail of every slot each time; the file is read again only when it has grown. */
  private tails = new Map<string, { size: number; lines: string[] }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly dir: string) {}

  fileOf(slot: string): string {
    return join(this.dir, `${slot}.log`);
  }

  /** The last `n` lines of the slot's log (reads at most the last 64 KiB). */
  async tail(slot: string, n: number): Promise<string[]> {
    const path = this.fileOf(slot);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return [];
    }
    const cached = this.tails.get(slot);
    if (cached?.size === size && cached.lines.length >= n) return cached.lines.slice(-n);
    const length = Math.min(size, 64 * 1024);
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      const lines = buffer.toString('utf8').split('\n').filter(Boolean);
      if (length < size) lines.shift(); // probably cut in the middle
      this.tails.set(slot, { size, lines: lines.slice(-Math.max(n, 200)) });
      return lines.slice(-n);
    } finally {
      await handle.close();
    }
  }

  /**
   * The lines of the cyrmaster `pid` of `slot` started at `sinceMs`: the slot's lines since then, and those of the
   * master before it had read its config (no syslog_prefix yet, so slot-syslogd files them as `other`).
   */
  async masterLines(slot: string, pid: number, sinceMs: number): Promise<string[]> {
    const own = (await this.tail(slot, 200)).filter((l) => Date.parse(l.slice(0, l.indexOf(' '))) >= sinceMs - 1000);
    const early = (await this.tail(UNTAGGED, 200)).filter((l) => new RegExp(`^\\S+ \\w+ (master|cyrmaster)\\[${pid}\\]: `).test(l));
    return [...early, ...own];
  }

  /**
   * From now on, lines added to the slot's log count as new (all of them, if the file does not exist yet). `resume`:
   * where a previous agent had read to (same file, not shrunk): the lines it never read are read first.
   */
  track(slot: string, resume?: LogPosition): void {
    if (this.offsets.has(slot)) return;
    let at: LogPosition = { ino: 0, offset: 0 };
    try {
      const st = statSync(this.fileOf(slot));
      at = resume && resume.ino === st.ino && resume.offset <= st.size ? resume : { ino: st.ino, offset: st.size };
    } catch {
      // no file yet: everything in it will be new
    }
    this.offsets.set(slot, at);
  }

  untrack(slot: string): void {
    this.offsets.delete(slot);
    this.tails.delete(slot);
  }

  /** Where each tracked slot's log has been read to (persisted by the caller, so a restart reads what it missed). */
  positions(): Record<string, LogPosition> {
    return Object.fromEntries(this.offsets);
  }

  private onNotable: (slot: string, line: string) => void = () => undefined;
  private onGrow: () => void = () => undefined;
  /**
   * Reads every tracked slot's new lines now (the follower does every 500 ms): a caller about to decide on what the
   * log says (a replay, a demotion) first sees every line written so far. Concurrent calls share one read, and one
   * asked for while a read runs gets another after it.
   */
  readonly poll = coalesced(async () => {
    for (const slot of [...this.offsets.keys()]) await this.readNew(slot);
  });

  private async readNew(slot: string): Promise<void> {
    const path = this.fileOf(slot);
    let st;
    try {
      st = await stat(path);
    } catch {
      return;
    }
    const seen = this.offsets.get(slot);
    if (seen === undefined) return; // untracked meanwhile
    // another file (slot-syslogd rotated it) or a shorter one: the new file is read whole
    const from = seen.ino !== st.ino || st.size < seen.offset ? 0 : seen.offset;
    this.offsets.set(slot, { ino: st.ino, offset: st.size });
    if (st.size === from) return;
    this.onGrow();
    const handle = await open(path, 'r');
    try {
      // every byte in chunks, a line cut at a chunk's end carried into the next (a full partition floods the log)
      let carry = '';
      for (let at = from; at < st.size; at += READ_CHUNK) {
        const length = Math.min(READ_CHUNK, st.size - at);
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, at);
        const lines = (carry + buffer.toString('utf8')).split('\n');
        carry = lines.pop() ?? '';
        for (const line of lines) if (line && isNotable(line)) this.onNotable(slot, line);
      }
      if (carry && isNotable(carry)) this.onNotable(slot, carry);
    } finally {
      await handle.close();
    }
  }

  /** Polls the tracked slots' files for new notable lines. */
  follow(onNotable: (slot: string, line: string) => void, onGrow: () => void, everyMs = 500): void {
    this.onNotable = onNotable;
    this.onGrow = onGrow;
    this.timer = setInterval(() => void this.poll().catch(() => undefined), everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/**
 * Makes sure Cyrus's syslog lines reach DIR: if nothing serves /dev/log, start slot-syslogd (shared by every agent
 * on this host, left running when the agent stops). If another daemon (rsyslog, journald forwarding to it) owns
 * /dev/log, it must write the per-slot files itself: deploy/rsyslog/30-slotctl.conf.template does exactly that.
 */
export async function ensureSyslog(dir: string, socketPath: string, syslogdBin: string, log: Logger): Promise<'ours' | 'foreign'> {
  const pidFile = join(dir, SYSLOGD_PID_FILE);
  const ours = () => existsSync(pidFile) && pidAlive(Number(readFileSync(pidFile, 'utf8').trim()));
  if (await socketIsLive(socketPath)) {
    // A slot-syslogd that another agent has just started writes its PID file right after it binds: give it a moment.
    for (let i = 0; i < 40 && !ours(); i++) await new Promise((r) => setTimeout(r, 50));
    if (ours()) return 'ours';
    log.warn(
      { socket: socketPath, dir },
      `another syslog daemon owns ${socketPath}: slot logs are read from ${dir} as that daemon writes them (install deploy/rsyslog/30-slotctl.conf.template)`,
    );
    return 'foreign';
  }
  const child = execa(syslogdBin, ['--socket', socketPath, '--dir', dir], { detached: true, stdio: 'ignore', cleanup: false, reject: false });
  child.unref();
  const deadline = performance.now() + 3000;
  while (performance.now() < deadline) {
    if ((await socketIsLive(socketPath)) && ours()) {
      log.info({ socket: socketPath, dir, pid: child.pid }, 'started slot-syslogd for Cyrus logs');
      return 'ours';
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`slot-syslogd did not start on ${socketPath}`);
}

/**
 * Keeps the slot-syslogd this agent relies on (ensureSyslog said 'ours'): checked every `everyMs` and started again
 * when nothing answers on the socket. Killed or crashed, it used to stay gone until the next agent start, and every
 * Cyrus line of the host was lost meanwhile, IOERROR and SYNCERROR events with them. Returns a stop function.
 */
export function keepSyslog(dir: string, socketPath: string, syslogdBin: string, log: Logger, everyMs = 2000): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      if (!(await socketIsLive(socketPath))) {
        log.warn({ socket: socketPath, dir }, `nothing answers on ${socketPath} any more: starting slot-syslogd again (Cyrus lines logged meanwhile are lost)`);
        await ensureSyslog(dir, socketPath, syslogdBin, log);
      }
    } catch (err) {
      log.error({ err: (err as Error).message, socket: socketPath }, 'could not start slot-syslogd again; trying at the next check');
    }
    if (stopped) return;
    timer = setTimeout(() => void tick(), everyMs);
    timer.unref();
  };
  timer = setTimeout(() => void tick(), everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
