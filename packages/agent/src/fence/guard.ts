// The agent's side of fencing: keeps a slot-fence process running for its state directory. What the fence enforces
// (fence.json: which master slots it guards and until when they may serve) is written by the lease keeper
// (lease/keeper.ts) *before* a master is started, so the fence never misses one.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { withContext, type Logger } from '@slotctl/shared';
import { pidAlive } from '../slot/process.js';
import { bootId, fencePaths, readFenceFile, type FenceFile, type FencedRecord } from './fence-file.js';

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

  /** Starts slot-fence unless one already guards this state directory (it outlives agent restarts). */
  /** What fence.json starts with; the lease keeper writes it (and every change) before the fence process starts. */
  get initialFile(): FenceFile {
    return this.file;
  }

  get filePath(): string {
    return this.paths.file;
  }

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
    if (this.fencePid()) return;
    this.log.error('the fence process is gone: starting it again');
    await this.spawn();
  }

  private async spawn(): Promise<number> {
    const child = execa(this.options.bin, ['--state-dir', this.options.stateDir], { detached: true, stdio: 'ignore', cleanup: false, reject: false });
    child.unref();
    for (let i = 0; i < 100; i++) {
      const pid = this.fencePid();
      if (pid) {
        this.log.info({ pid }, 'fence process started');
        return pid;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`slot-fence did not start (see ${this.paths.log})`);
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
