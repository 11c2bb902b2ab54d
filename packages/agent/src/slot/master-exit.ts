// A cyrmaster that exits unasked, in its own words: what it wrote to stderr (kept in a file of the agent's, not a
// pipe: a pipe would break under a running cyrmaster when the agent restarts) and what it sent to syslog, with the
// meaning of its exit code. "cyrmaster exited with code 78", sixteen times, was all an operator got before.
import { closeSync, constants, mkdirSync, openSync, statSync, truncateSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ValidationError } from '@slotctl/shared';

/** sysexits.h, which Cyrus exits with. */
const SYSEXITS: Record<number, string> = {
  64: 'EX_USAGE: a command line Cyrus does not accept',
  65: 'EX_DATAERR: bad input data',
  66: 'EX_NOINPUT: an input file missing or unreadable',
  67: 'EX_NOUSER: unknown user',
  68: 'EX_NOHOST: unknown host',
  69: 'EX_UNAVAILABLE: a service it needs is unavailable',
  70: 'EX_SOFTWARE: an internal error',
  71: 'EX_OSERR: an operating system error, such as a file it could not open or a failed fork',
  72: 'EX_OSFILE: a system file missing or wrong',
  73: 'EX_CANTCREAT: cannot create a file',
  74: 'EX_IOERR: an input/output error',
  75: 'EX_TEMPFAIL: a temporary failure',
  76: 'EX_PROTOCOL: a protocol error',
  77: 'EX_NOPERM: permission denied',
  78: 'EX_CONFIG: its configuration is missing, unreadable or wrong',
};

/** Pure: `code 78 (EX_CONFIG: …)`, `signal SIGKILL`. */
export function exitStatus(code: number | undefined, signal: string | undefined): string {
  if (signal) return `signal ${signal}`;
  const meaning = code === undefined ? undefined : SYSEXITS[code];
  return `code ${code ?? '?'}${meaning ? ` (${meaning})` : ''}`;
}

/** Pure: the slot's error for an exit: status, how long it ran, and its words (stderr first, then syslog). */
export function describeExit(input: { code: number | undefined; signal: string | undefined; ranMs: number; stderr: readonly string[]; log: readonly string[] }): string {
  const ran = input.ranMs < 60_000 ? `${(input.ranMs / 1000).toFixed(1)} s` : `${Math.round(input.ranMs / 1000)} s`;
  const words = [...input.stderr, ...input.log].join(' | ');
  return `cyrmaster exited with ${exitStatus(input.code, input.signal)} after ${ran}${words ? `: ${words}` : ''}`;
}

const MAX_KEPT = 1024 * 1024;
const TAIL_BYTES = 4096;

const fileOf = (dir: string, slot: string) => {
  // the slot name has passed the desired state's checks; a path separator here would still be a bug
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(slot)) throw new ValidationError(`slot name ${JSON.stringify(slot)} cannot name a file`);
  return join(dir, `${slot}.stderr`);
};

/**
 * A fresh output file for the cyrmaster about to start (stdout and stderr), in the agent's own directory, opened
 * without following a link: the descriptor to hand to the child (the caller closes its copy after the spawn).
 */
export function openMasterOutput(dir: string, slot: string): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return openSync(fileOf(dir, slot), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND | constants.O_NOFOLLOW, 0o600);
}

/** A cyrmaster that writes to stderr for weeks does not fill the disk: over 1 MiB, its file starts again (O_APPEND). */
export function capMasterOutput(dir: string, slot: string): void {
  try {
    if (statSync(fileOf(dir, slot)).size > MAX_KEPT) truncateSync(fileOf(dir, slot), 0);
  } catch {
    // none yet
  }
}

/** The last lines of what the cyrmaster wrote (at most the last 4 KiB), blank lines left out. */
export async function masterOutputTail(dir: string, slot: string, lines = 3): Promise<string[]> {
  let handle;
  try {
    handle = await open(fileOf(dir, slot), constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return [];
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const text = buffer.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    if (length < size) text.shift(); // probably cut in the middle
    return text.slice(-lines).map((l) => l.slice(0, 300));
  } finally {
    await handle.close();
  }
}

/** Closes the agent's copy of a descriptor handed to a child. */
export function closeQuietly(fd: number | undefined): void {
  if (fd !== undefined) closeSync(fd);
}

/**
 * What to say of a cyrmaster that exited: its stderr and its syslog lines since it started. slot-syslogd files a line
 * a moment after Cyrus sent it, so an exit with no line yet waits up to `waitMs` for one.
 */
export async function explainExit(input: {
  code: number | undefined;
  signal: string | undefined;
  startedAt: number;
  stderr: () => Promise<string[]>;
  logLines: () => Promise<string[]>;
  pick: (lines: string[]) => string[];
  waitMs?: number;
}): Promise<string> {
  const ranMs = Date.now() - input.startedAt;
  const stderr = await input.stderr().catch(() => []);
  let log: string[] = [];
  for (let waited = 0; ; waited += 50) {
    log = input.pick(await input.logLines().catch(() => []));
    if (log.length || waited >= (input.waitMs ?? 500)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return describeExit({ code: input.code, signal: input.signal, ranMs, stderr, log });
}
