// The machines' wall clocks for the soak's clock steps: each machine's agent, fence and Cyrus run under libfaketime,
// whose offset is read from that machine's file (monotonic time stays true: leases must run on it).
//
// libfaketime shares a semaphore and a memory segment (/dev/shm) among the processes of one tree. Left to itself,
// the first process makes them, mode 0600, named by its pid: a root process that then runs Cyrus as cyrus (the same
// pid after exec, setpriv) leaves cyrus unable to open them or to make its own under that name, and every cyrmaster
// exited 1 (CI, ci-122); and each maker killed or replaced by exec left both files behind (≈1,200 in a day). Here
// one pair per machine is made up front by libfaketime itself, opened to every user, and named to every process in
// FAKETIME_SHARED, so that no process makes its own; the run removes them, and any other such file made during the
// run is a leftover.
//
// That semaphore is a lock every process of the machine takes as it starts (libfaketime's init records a start time
// under it). A process killed with SIGKILL while holding it never gives it back: left at libfaketime's 1, the next
// process to start on that machine — the agent restarted, a fence, every Cyrus child — waited on it for ever, and the
// machine froze for the rest of the run (60-minute soak, seed 20261204: m4's agent never connected again; reproduced
// by killing a process group that execs in a loop: stuck after 224 kills). What the lock guards is the start time of
// libfaketime's start-at and rate modes, which the soak does not use (its clocks are offsets), so the pair is made
// with the semaphore counting from 2^30: a killed holder costs one unit of a billion, and `lostUnits()` says how many.
// The semaphore then excludes nothing: the soak must keep to offsets (never libfaketime's start-at, rate or increment
// modes, whose shared start time and tick counter it guards).
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** libfaketime: the wall clock of the processes it is preloaded into, offset by what the machine's file says. */
export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const SHM = '/dev/shm';
/** The names libfaketime gives its objects in /dev/shm. */
const FAKETIME_FILE = /^(sem\.faketime_sem_|faketime_shm_)\d+$/;
/** Where the machine semaphore's count starts: far more units than a run's killed processes can take. */
export const SEMAPHORE_UNITS = 2 ** 30;

export class MachineClocks {
  private readonly shared = new Map<string, { sem: string; shm: string }>();
  private readonly startedAt = Date.now();

  constructor(private readonly dir: string) {
    mkdirSync(join(dir, 'clock'), { recursive: true });
  }

  /** The environment of a machine's agent (and so of its fence and Cyrus): its clock file starts at no offset. */
  env(machine: string): Record<string, string> {
    const file = this.file(machine);
    if (!existsSync(file)) writeFileSync(file, '+0\n');
    const shared = this.shared.get(machine) ?? this.makeShared(machine);
    // the cache keeps Cyrus from reading the file per call
    return { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1', FAKETIME_SHARED: `/${shared.sem} /${shared.shm}` };
  }

  /** Steps a machine's wall clock to `offsetMs` from the true one (0: back). */
  set(machine: string, offsetMs: number): void {
    writeFileSync(this.file(machine), `${offsetMs < 0 ? '-' : '+'}${Math.round(Math.abs(offsetMs) / 1000)}\n`);
  }

  /** Every machine's clock back to the true one. */
  resetAll(machines: readonly string[]): void {
    for (const m of machines) if (existsSync(this.file(m))) this.set(m, 0);
  }

  /**
   * Per machine, the semaphore units taken and not given back (processes killed while holding it); a machine absent
   * had no clock. Exact once the machine's processes have stopped; while they run, one may hold a unit for a moment.
   */
  lostUnits(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [machine, { sem }] of this.shared) out[machine] = SEMAPHORE_UNITS - readSemaphore(join(SHM, `sem.${sem}`));
    return out;
  }

  /** Removes the shared objects made for the machines (every process using them has ended). */
  remove(): void {
    for (const { sem, shm } of this.shared.values()) {
      rmSync(join(SHM, `sem.${sem}`), { force: true });
      rmSync(join(SHM, shm), { force: true });
    }
    this.shared.clear();
  }

  /** libfaketime objects made since this run started that are not the machines' own: some process made its own. */
  strays(): string[] {
    const ours = new Set([...this.shared.values()].flatMap(({ sem, shm }) => [`sem.${sem}`, shm]));
    const madeDuringRun = (f: string) => (statSync(join(SHM, f), { throwIfNoEntry: false })?.ctimeMs ?? 0) >= this.startedAt - 1000;
    return readdirSync(SHM).filter((f) => FAKETIME_FILE.test(f) && !ours.has(f) && madeDuringRun(f)).map((f) => join(SHM, f));
  }

  private file(machine: string): string {
    return join(this.dir, 'clock', machine);
  }

  /**
   * A shell under libfaketime makes the pair for its pid as any first process would; it opens them to everyone
   * and is killed before its exit handler could remove them.
   */
  private makeShared(machine: string): { sem: string; shm: string } {
    const { FAKETIME_SHARED: _inherited, ...rest } = process.env;
    const env = { ...rest, LD_PRELOAD: LIBFAKETIME, FAKETIME: '+0' };
    let pid = '';
    try {
      const script = 'chmod 0666 "$1/sem.faketime_sem_$$" "$1/faketime_shm_$$" && echo $$ && kill -KILL $$';
      execFileSync('sh', ['-c', script, 'sh', SHM], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // killed, as meant: its pid is what it printed
      pid = String((err as { stdout?: string }).stdout ?? '').trim();
      if (!/^\d+$/.test(pid)) throw new Error(`could not make libfaketime's shared objects for ${machine}: ${(err as Error).message}`);
    }
    if (!pid) throw new Error(`could not make libfaketime's shared objects for ${machine}: the shell was not killed`);
    const made = { sem: `faketime_sem_${pid}`, shm: `faketime_shm_${pid}` };
    setSemaphore(join(SHM, `sem.${made.sem}`), SEMAPHORE_UNITS);
    this.shared.set(machine, made);
    return made;
  }
}

/**
 * libfaketime objects in /dev/shm that no living process has mapped (a killed run's, or a maker's that was killed):
 * removed; their paths. One that is mapped is in use and stays.
 */
export function removeUnusedFaketimeObjects(): string[] {
  const candidates = readdirSync(SHM).filter((f) => FAKETIME_FILE.test(f));
  if (!candidates.length) return [];
  const mapped = new Set<string>();
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let maps = '';
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    for (const m of maps.matchAll(/\/dev\/shm\/(\S+)/g)) mapped.add(m[1]!);
  }
  const removed = candidates.filter((f) => !mapped.has(f)).map((f) => join(SHM, f));
  for (const f of removed) rmSync(f, { force: true });
  return removed;
}


// glibc's POSIX semaphore on x86-64 (and any 64-bit-atomics target): a 64-bit word, the count in its low 32 bits
// (little-endian: the file's first four bytes) and the sleepers in its high 32, then two ints. Written through the
// file before any process maps it; read through the file (tmpfs: the same page the processes map).
const SEM_SIZE = 32;

/** The count of a semaphore file of /dev/shm. */
export function readSemaphore(path: string): number {
  const buf = Buffer.alloc(SEM_SIZE);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, buf, 0, SEM_SIZE, 0) !== SEM_SIZE) throw new Error(`${path} is not a ${SEM_SIZE}-byte glibc semaphore`);
  } finally {
    closeSync(fd);
  }
  return buf.readUInt32LE(0);
}

/** Sets the count of a semaphore file nobody uses yet; a layout it does not recognise stops the run instead. */
export function setSemaphore(path: string, count: number): void {
  const found = readSemaphore(path);
  if (found !== 1) throw new Error(`${path}: a fresh libfaketime semaphore should count 1, found ${found}: glibc's semaphore layout is not the one this harness knows`);
  writeSemaphore(path, count);
  if (readSemaphore(path) !== count) throw new Error(`${path}: the semaphore count did not take ${count}`);
}

/** Overwrites a semaphore file's count, unchecked (the first four bytes; the sleepers' word is left as it is). */
export function writeSemaphore(path: string, count: number): void {
  const buf = Buffer.alloc(4);
  buf.writeUInt32LE(count);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, buf, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
}
