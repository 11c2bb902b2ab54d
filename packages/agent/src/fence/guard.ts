// The agent's side of fencing: keeps a slot-fence process running for its state directory. What the fence enforces
// (fence.json: which master slots it guards and until when they may serve) is written by the lease keeper
// (lease/keeper.ts) *before* a master is started, so the fence never misses one.
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { withContext, type Logger } from '@slotctl/shared';
import { pidAlive } from '../slot/process.js';
import { bootId, fencePaths, readFenceFile, type FenceFile, type FencedRecord } from './fence-file.js';

/**
 * How long a new fence process may take to say it runs (its pid file). Node's start and imports take 0.6 s on an idle
 * host, but five agents, their fences and slot-syslogd starting at once on two busy cores once took more than 5 s,
 * and the agent gave up on a fence that was merely slow. Waiting is safe: no master starts before the fence runs.
 */
export const FENCE_START_TIMEOUT_MS = 60_000;
const FENCE_SLOW_MS = 5000;

export class FenceStartError extends Error {
  override name = 'FenceStartError';
}

export interface FenceGuardOptions {
  stateDir: string;
  /** bin/slot-fence.js */
  bin: string;
  vip: FenceFile['vip'];
  log: Logger;
}

export class FenceGuard {
  private readonly paths;
  private readonly boot = bootId();
  private readonly file: FenceFile;
  private readonly log: Logger;

  constructor(private readonly options: FenceGuardOptions) {
    this.paths = fencePaths(options.stateDir);
    this.log = withContext(options.log, {});
    // A restarted agent inherits the deadline its predecessor had (same boot): adopted masters keep serving until
    // the first acknowledged heartbeat, and not one moment longer than the old lease allowed.
    const previous = readFenceFile(this.paths.file, this.boot);
    this.file = { format: 1, bootId: this.boot, agentPid: process.pid, deadline: previous?.deadline, holder: previous?.holder ?? 'none', masters: previous?.masters ?? [], vip: options.vip };
  }

  /** The deadline inherited from an earlier agent of this boot, if any. */
  get inheritedDeadline(): number | undefined {
    return this.file.deadline;
  }

  private fencePid(): number | undefined {
    try {
      const pid = Number(readFileSync(this.paths.pid, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return undefined;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmd.includes('slot-fence') && cmd.includes(this.options.stateDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** What fence.json starts with; the lease keeper writes it (and every change) before the fence process starts. */
  get initialFile(): FenceFile {
    return this.file;
  }

  get filePath(): string {
    return this.paths.file;
  }

  /** Starts slot-fence unless one already guards this state directory (it outlives agent restarts). */
  async start(): Promise<number> {
    const running = this.fencePid();
    if (running) {
      this.log.info({ pid: running }, 'fence process already running');
      return running;
    }
    return this.spawn();
  }

  /** Called every few seconds: a fence process that died (killed by hand, OOM) is started again. */
  async keepRunning(): Promise<void> {
    if (this.spawning || this.fencePid()) return;
    this.log.error('the fence process is gone: starting it again');
    await this.spawn();
  }

  private spawning: Promise<number> | undefined;

  private spawn(): Promise<number> {
    this.spawning ??= this.spawnOnce().finally(() => (this.spawning = undefined));
    return this.spawning;
  }

  private async spawnOnce(): Promise<number> {
    // Its stdout and stderr go to its log: a fence that dies before its logger exists leaves its reason there. The
    // state directory is the agent's own (0700), and the log is never followed if a link.
    const fd = openSync(this.paths.log, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    let exit: string | undefined;
    try {
      // node's spawn (an argument array, no shell): execa's types take only literal file descriptors
      const child = spawn(this.options.bin, ['--state-dir', this.options.stateDir], { detached: true, stdio: ['ignore', fd, fd] });
      child.once('error', (err) => (exit = `could not be run: ${err.message}`));
      child.once('exit', (code, signal) => (exit = signal ? `was killed by ${signal}` : `exited with code ${code}`));
      child.unref();
    } finally {
      closeSync(fd); // the child has its own copy
    }
    const started = performance.now();
    let warned = false;
    for (;;) {
      const pid = this.fencePid();
      if (pid) {
        this.log.info({ pid, ms: Math.round(performance.now() - started) }, 'fence process started');
        return pid;
      }
      if (exit) throw new FenceStartError(`slot-fence ${exit} before it ran (see ${this.paths.log})`);
      const waited = Math.round(performance.now() - started);
      if (waited > FENCE_START_TIMEOUT_MS) throw new FenceStartError(`slot-fence did not start within ${FENCE_START_TIMEOUT_MS / 1000} s (see ${this.paths.log}); is the host overloaded?`);
      if (!warned && waited > FENCE_SLOW_MS) {
        warned = true;
        this.log.warn({ waitedMs: waited }, 'slot-fence is slow to start (a busy host); masters wait for it');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Ends the fence process (after every slot was stopped on purpose: nothing left to guard). */
  stopProcess(): void {
    const pid = this.fencePid();
    if (pid) process.kill(pid, 'SIGTERM');
  }

  /** What the fence last did (this boot), for reports. */
  lastFenced(): FencedRecord | undefined {
    try {
      const r = JSON.parse(readFileSync(this.paths.fenced, 'utf8')) as FencedRecord;
      return r.bootId === this.boot ? r : undefined;
    } catch {
      return undefined;
    }
  }
}
