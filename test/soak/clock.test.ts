// The soak's machine clocks (libfaketime): a process killed while it holds the machine's libfaketime semaphore must
// not freeze every later process of that machine. Found by the 60-minute soak, seed 20261204: a kill inside
// libfaketime's start-up lock left the count at 0, and m4's restarted agent waited on it for the rest of the run.
// A killed holder is simulated here by taking one unit through the file (writeSemaphore), exactly what such a kill
// leaves behind.
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LIBFAKETIME, MachineClocks, SEMAPHORE_UNITS, readSemaphore, writeSemaphore } from './clock.js';

const dirs: string[] = [];
const clocks: MachineClocks[] = [];
afterEach(() => {
  for (const c of clocks.splice(0)) c.remove();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function machineClocks(): MachineClocks {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-clock-'));
  dirs.push(dir);
  const c = new MachineClocks(dir);
  clocks.push(c);
  return c;
}

/** The semaphore file a machine's environment names. */
const semaphoreOf = (env: Record<string, string>) => join('/dev/shm', `sem.${env.FAKETIME_SHARED!.split(' ')[0]!.slice(1)}`);

/** Starts `date +%s` under a machine's clock; resolves to its output, or undefined if it did not end within `ms`. */
async function startUnder(env: Record<string, string>, ms: number): Promise<string | undefined> {
  const run = execa('date', ['+%s'], { env, extendEnv: true, timeout: ms, killSignal: 'SIGKILL', reject: false });
  const r = await run;
  return r.timedOut ? undefined : r.stdout.trim();
}

describe.runIf(existsSync(LIBFAKETIME))('machine clocks under libfaketime', () => {
  it('a machine semaphore counts from 2^30, and processes that start and end give every unit back', async () => {
    const c = machineClocks();
    const env = c.env('m1');
    expect(readSemaphore(semaphoreOf(env))).toBe(SEMAPHORE_UNITS);
    for (let i = 0; i < 3; i++) expect(await startUnder(env, 10_000)).toMatch(/^\d+$/);
    expect(c.lostUnits()).toEqual({ m1: 0 });
  });

  it('a unit kept by a killed holder does not stop the next process of the machine from starting', async () => {
    const c = machineClocks();
    const env = c.env('m1');
    writeSemaphore(semaphoreOf(env), SEMAPHORE_UNITS - 1);
    expect(await startUnder(env, 10_000)).toMatch(/^\d+$/);
    expect(c.lostUnits()).toEqual({ m1: 1 });
  });

  it("with libfaketime's own count of 1, that one lost unit freezes the machine (what the soak saw)", async () => {
    const c = machineClocks();
    const env = c.env('m1');
    writeSemaphore(semaphoreOf(env), 0);
    expect(await startUnder(env, 1500)).toBeUndefined();
  });

  it("the clock still steps: a machine's processes see its offset", async () => {
    const c = machineClocks();
    const env = c.env('m1');
    c.set('m1', 3600_000);
    const shown = Number(await startUnder(env, 10_000));
    expect(shown - Date.now() / 1000).toBeGreaterThan(3500);
    expect(shown - Date.now() / 1000).toBeLessThan(3700);
  });
});
