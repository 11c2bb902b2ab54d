import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetnsCluster } from '../test/cluster/netns.js';
import { ROOT } from '../tools/local-cluster.js';

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

/**
 * The lock the namespace-cluster tests take (test/cluster/netns.ts lock()): a benchmark and a cluster test side by
 * side on 2 cores starve each other, so measurements wait for the lock and hold it. A holder whose PID is gone is
 * stale and removed. Resolves with the release function (also run at exit).
 */
export async function takeClusterLock(log: (line: string) => void = () => {}): Promise<() => void> {
  const dir = join(tmpdir(), 'slotctl-netns-cluster.lock');
  const started = Date.now();
  let said = false;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'holder'), `${process.pid} bench\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(dir, 'holder'), 'utf8').split(' ')[0]) || 0;
      } catch {
        // just made, not named yet
      }
      if (holder && !existsSync(`/proc/${holder}`)) rmSync(dir, { recursive: true, force: true });
      if (!said && Date.now() - started > 1000) {
        said = true;
        log(`waiting for ${dir} (held by PID ${holder || '?'})…`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (said) log(`lock taken after ${Math.round((Date.now() - started) / 1000)} s`);
  let held = true;
  const release = () => {
    if (held) rmSync(dir, { recursive: true, force: true });
    held = false;
  };
  process.once('exit', release);
  return release;
}

/**
 * A line of tools/imap-probe.ts: at `at` (the attempt's start) the address began to answer `* OK`, or stopped; an `ok`
 * line also says when that attempt's TCP handshake completed and when its greeting arrived.
 */
export interface ProbeLine {
  at: number;
  ok: boolean;
  connectedAt?: number;
  greetedAt?: number;
}

/** The probe's last line: how long its greeted attempts waited from the handshake to `* OK`. */
export interface ProbeSummary {
  greeted: number;
  greetP50Ms?: number;
  greetP99Ms?: number;
  greetMaxMs?: number;
}

/** When the client of an `ok` line was greeted (its attempt's start, for a line of a probe that did not say). */
export const greetedAt = (l: ProbeLine) => l.greetedAt ?? l.at;

/**
 * Starts tools/imap-probe.ts in the client namespace against `ip` (an attempt every `everyMs` for `forMs`) and resolves
 * once it has seen the address answer `* OK` (within `readyMs`): a fault is injected only when the probe is already
 * seeing the store serve. A fixed sleep was not enough: on a loaded host a probe (a Node process loading tsx) started
 * late, after the failover it was to time had ended, and saw no outage at all; and a first attempt can miss its
 * 200 ms handshake while four probes start at once. `lines()` resolves when the probe has ended, with every line; `summary()` with its greeting times.
 * `readyMs` bounds the probe's own start, not a measured outage (the fault comes after it): 15 s ended two failover
 * benchmarks at a 2 s lease under load before any crash ("no attempt yet": four probes, each a Node process loading
 * tsx in the client namespace, beside 40 slots and the mail load), so it is a minute.
 */
export async function startImapProbe(cluster: NetnsCluster, ip: string, everyMs: number, forMs: number, readyMs = 60_000): Promise<{ answeredAt: number; lines: () => Promise<ProbeLine[]>; summary: () => Promise<ProbeSummary | undefined> }> {
  const run = cluster.exec('cl', ['node', '--import', 'tsx', join(ROOT, 'tools', 'imap-probe.ts'), ip, String(everyMs), String(forMs)]);
  const all = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeLine | { summary: ProbeSummary });
  const parse = (text: string) => all(text).filter((l): l is ProbeLine => 'at' in l);
  const answeredAt = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`${ip} did not answer * OK within ${readyMs} ms of its probe's start: ${seen.trim() || 'no attempt yet'}`)), readyMs);
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      const ok = parse(seen.slice(0, seen.lastIndexOf('\n') + 1)).find((l) => l.ok);
      if (ok) {
        clearTimeout(timer);
        run.stdout?.off('data', onData);
        resolve(ok.at);
      }
    };
    run.stdout?.on('data', onData);
    void run.then((r) => {
      clearTimeout(timer);
      reject(new Error(`the IMAP probe of ${ip} ended before it saw * OK (exit ${r.exitCode}): ${r.stdout} ${r.stderr}`));
    });
  });
  return {
    answeredAt,
    lines: async () => parse((await run).stdout),
    summary: async () => all((await run).stdout).flatMap((l) => ('summary' in l ? [l.summary] : []))[0],
  };
}

/** Writes a benchmark's figures to bench/results/NAME.json; returns the path as the benchmarks print it. */
export function writeResult(name: string, out: unknown): string {
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', `${name}.json`), `${JSON.stringify(out, null, 2)}\n`);
  return `bench/results/${name}.json`;
}
