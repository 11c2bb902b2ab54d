// The fence process on its own (no cluster): the masters it guards are killed at their deadline even when releasing
// their service IPs never finishes. Found by the 60-minute soak (seed 20261204): on a frozen machine every `ip` the
// fence started waited for ever; the fence killed one master, then waited on `ip` inline, and no later deadline was
// enforced. Here `ip` is made to hang (the fault), everything else is real: the slot-fence binary, its fence.json,
// masters in process groups of their own whose command lines are cyrmaster's, SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { bootId, fencePaths, type FencedRecord, type FenceFile } from '../packages/agent/src/fence/fence-file.js';
import { monotonicMs } from '../packages/agent/src/lease/lease.js';
import { pidAlive } from '../packages/agent/src/slot/process.js';

const FENCE_BIN = fileURLToPath(new URL('../packages/agent/bin/slot-fence.js', import.meta.url));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const killPid = (pid: number | undefined, group = false) => {
  try {
    if (pid) process.kill(group ? -pid : pid, 'SIGKILL');
  } catch {
    // already gone
  }
};

/** A stand-in master: its own process group, `cyrmaster … -C CONF` on its command line, its PID in a file. */
function master(dir: string, slot: string): { child: ChildProcess; entry: FenceFile['masters'][number] } {
  const imapdConf = join(dir, `${slot}-imapd.conf`);
  const pidFile = join(dir, `${slot}.pid`);
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', '--', '-C', imapdConf], { argv0: 'cyrmaster', detached: true, stdio: 'ignore' });
  cleanups.push(() => killPid(child.pid, true));
  writeFileSync(pidFile, `${child.pid}\n`);
  return { child, entry: { slot, store: slot.split('-')[0]!, epoch: 3, pidFile, imapdConf, serviceIp: '10.254.0.1' } };
}

async function until(what: string, ok: () => boolean, ms: number): Promise<number> {
  const started = performance.now();
  while (!ok()) {
    if (performance.now() - started > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return performance.now() - started;
}

/** A fence over `masters` in a fresh state directory, with an `ip` that never answers (the fault) or answers at once. */
function hungFence(ip: 'hangs' | 'answers' = 'hangs'): { dir: string; paths: ReturnType<typeof fencePaths>; ipPids: string; write: (masters: FenceFile['masters'], deadline: number, agentPid?: number) => void; start: () => ChildProcess } {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-fence-hang-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const state = join(dir, 'state');
  const bin = join(dir, 'bin');
  for (const d of [state, bin]) mkdirSync(d, { mode: 0o700 });
  // its PIDs noted, so the test ends every one it left
  const ipPids = join(dir, 'ip-pids');
  writeFileSync(join(bin, 'ip'), ip === 'hangs' ? `#!/bin/sh\necho $$ >> '${ipPids}'\nexec sleep 600\n` : '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'ip'), 0o755);
  cleanups.push(() => {
    if (existsSync(ipPids)) for (const p of readFileSync(ipPids, 'utf8').split('\n').filter(Boolean)) killPid(Number(p));
  });
  const paths = fencePaths(state);
  const write = (masters: FenceFile['masters'], deadline: number, agentPid = process.pid) => {
    const file: FenceFile = { format: 1, bootId: bootId(), agentPid, deadline, holder: 'test', masters, vip: { driver: 'ip', iface: 'lo' } };
    writeFileSync(`${paths.file}.tmp`, JSON.stringify(file));
    renameSync(`${paths.file}.tmp`, paths.file);
  };
  const start = () => {
    const fence = spawn(process.execPath, [FENCE_BIN, '--state-dir', state], { detached: true, stdio: 'ignore', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
    // its own process group (detached): the `ip` it runs goes with it
    cleanups.push(() => killPid(fence.pid, true));
    return fence;
  };
  return { dir, paths, ipPids, write, start };
}

describe('the fence process', () => {
  it('kills every master at the deadline though `ip` never returns, and enforces the next deadline meanwhile', async () => {
    const { dir, paths, ipPids, write, start } = hungFence();
    const a = master(dir, 's01-m1');
    const b = master(dir, 's02-m1');
    // a far deadline while the fence starts (slow on a busy host), the near one once it runs
    write([a.entry, b.entry], monotonicMs() + 600_000);
    start();
    await until('the fence running', () => existsSync(paths.pid), 30_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(pidAlive(a.child.pid!) && pidAlive(b.child.pid!)).toBe(true); // not before the deadline
    write([a.entry, b.entry], monotonicMs() + 500);

    // both masters die at the deadline: the second is not kept waiting by the first one's release
    await until('both masters killed', () => !pidAlive(a.child.pid!) && !pidAlive(b.child.pid!), 5000);
    await until('the release tried (it hangs)', () => existsSync(ipPids), 5000);

    // a new deadline while that release still waits on `ip`: its master is killed all the same
    const c = master(dir, 's03-m1');
    write([c.entry], monotonicMs() + 300);
    await until('the next deadline enforced', () => !pidAlive(c.child.pid!), 3000);

    // the hung `ip` is killed at its own deadline and the record says the release failed, naming the command
    await until('the first record', () => existsSync(paths.fenced), 30_000);
    const record = JSON.parse(readFileSync(paths.fenced, 'utf8')) as FencedRecord;
    expect(record.slots.map((s) => s.slot)).toEqual(['s01-m1', 's02-m1']);
    expect(record.slots.every((s) => s.killed !== undefined && !s.released)).toBe(true);
    expect(record.slots[0]!.error).toMatch(/ip -o -4 addr show dev lo did not finish within 5 s \(killed\)/);
  }, 60_000);

  it('names every master it killed for a deadline in its record, though it had to kill one of them again', async () => {
    // ci on ba76305 (failover.test.ts, a hung agent): the fence killed every master, found one still running at the
    // next tick (dying on a busy host), killed it again, and its second record said the others were not killed
    const { dir, paths, write, start } = hungFence('answers');
    const a = master(dir, 's01-m1');
    const b = master(dir, 's02-m1');
    write([a.entry, b.entry], monotonicMs() + 600_000);
    start();
    await until('the fence running', () => existsSync(paths.pid), 30_000);
    write([a.entry, b.entry], monotonicMs() + 300);
    await until('both masters killed', () => !pidAlive(a.child.pid!) && !pidAlive(b.child.pid!), 5000);
    await until('the first record', () => existsSync(paths.fenced), 10_000);
    const record = () => JSON.parse(readFileSync(paths.fenced, 'utf8')) as FencedRecord;
    expect(record().slots.map((s) => [s.slot, s.killed])).toEqual([['s01-m1', a.child.pid], ['s02-m1', b.child.pid]]);

    // s01-m1 runs again past the same deadline: killed again, and the new record still names s02-m1's kill
    const again = master(dir, 's01-m1');
    await until('the master started again killed', () => !pidAlive(again.child.pid!), 5000);
    await until('the second record', () => record().slots[0]!.killed === again.child.pid, 10_000);
    expect(record().slots.map((s) => [s.slot, s.killed])).toEqual([['s01-m1', again.child.pid], ['s02-m1', b.child.pid]]);
  }, 60_000);

  it('with its agent gone, it finishes the address releases before it stops', async () => {
    const { dir, paths, write, start } = hungFence();
    const a = master(dir, 's01-m1');
    write([a.entry], monotonicMs() + 600_000);
    const fence = start();
    const exited = new Promise<number>((resolve) => fence.once('exit', () => resolve(performance.now())));
    await until('the fence running', () => existsSync(paths.pid), 30_000);
    // the agent is gone at the deadline: once the master is killed nothing is left to guard but the release
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    write([a.entry], monotonicMs() + 300, gone.pid!);
    await until('the master killed', () => !pidAlive(a.child.pid!), 5000);
    const killedAt = performance.now();
    const stoppedAt = await exited;
    expect(existsSync(paths.fenced), 'the record written before the fence stopped').toBe(true);
    expect(stoppedAt - killedAt).toBeGreaterThan(4000); // it waited for the bounded `ip` (5 s) rather than leave at once
  }, 60_000);
});
