import { readFileSync } from 'node:fs';

/** `--name value` from the command line, or the fallback. */
export function benchArg(name: string, fallback: string, argv = process.argv.slice(2)): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
}

/** Resident memory of a process, MB (from /proc). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A store as `slotctl store list --json` prints it (the fields the benchmarks use). */
export interface StoreJson {
  name: string;
  serviceIp: string;
  master: { name: string; machine: string };
  replica: { name: string; machine: string };
}
