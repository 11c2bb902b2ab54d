// The contract between the agent and its fence process (slot-fence): STATE_DIR/fence.json, written atomically by
// the agent whenever its lease deadline or its set of master slots changes, read by the fence every 100 ms. Times
// are CLOCK_MONOTONIC milliseconds, valid only within one boot (hence the boot id).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FencedMaster {
  slot: string;
  store: string;
  epoch: number;
  /** cyrmaster's PID file and its -C path: the fence kills only a process that is this slot's master. */
  pidFile: string;
  imapdConf: string;
  serviceIp: string;
}

export interface FenceFile {
  format: 1;
  bootId: string;
  agentPid: number;
  /** Until then (CLOCK_MONOTONIC ms) the masters may serve; undefined = no lease known: they may not. */
  deadline: number | undefined;
  /** Where the deadline came from, for the fence's log: the coordinator's lease or the partners' promises. */
  holder: string;
  masters: FencedMaster[];
  vip: { driver: 'ip' | 'loopback'; iface: string };
}

/** What the fence did, for the agent's reports and the operator (STATE_DIR/fenced.json). */
export interface FencedRecord {
  bootId: string;
  /** CLOCK_MONOTONIC ms when the fence fired, and the deadline it enforced. */
  at: number;
  deadline: number | undefined;
  wallTime: string;
  slots: { slot: string; store: string; epoch: number; killed: number | undefined; released: boolean; error?: string }[];
}

export const fencePaths = (stateDir: string) => ({
  file: join(stateDir, 'fence.json'),
  pid: join(stateDir, 'slot-fence.pid'),
  fenced: join(stateDir, 'fenced.json'),
  log: join(stateDir, 'slot-fence.log'),
});

export function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** Atomic (temporary file, rename) and synchronous; not fsynced (see FenceGuard.update). */
export function writeFenceFile(path: string, file: FenceFile): void {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(temp, `${JSON.stringify(file)}\n`, { mode: 0o600 });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** The file as last written, or undefined (missing, half-understood or from another boot: nothing to trust). */
export function readFenceFile(path: string, currentBoot: string): FenceFile | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as FenceFile;
    if (parsed.format !== 1 || !Array.isArray(parsed.masters)) return undefined;
    if (parsed.bootId !== currentBoot) return { ...parsed, deadline: undefined }; // a clock of another boot
    return parsed;
  } catch {
    return undefined;
  }
}

/** Pure: must the fence act now? Masters listed and no deadline, or the deadline passed. */
export function fenceDue(file: FenceFile | undefined, now: number): boolean {
  if (!file || file.masters.length === 0) return false;
  return file.deadline === undefined || now >= file.deadline;
}
