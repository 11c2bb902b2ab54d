// What `pnpm test:cleanup` may kill: a process named in a test directory's pids/ whose command line or environment
// names that directory — an etcd-backed coordinator names it only in its environment (its crash file).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { cleanupNetns, pidNames } from './netns-cleanup.js';

const dir = mkdtempSync(join(tmpdir(), 'slotctl-cleanup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const exited = (child: ReturnType<typeof spawn>) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

it('stops a process whose environment alone names the test directory, and not one that names it nowhere', async () => {
  const ours = spawn('sleep', ['30'], { env: { ...process.env, SLOTCTL_TEST_CRASH_FILE: join(dir, 'crash-at-c1') }, stdio: 'ignore' });
  const stranger = spawn('sleep', ['30'], { env: { PATH: process.env.PATH ?? '' }, stdio: 'ignore' });
  try {
    expect(pidNames(ours.pid!, dir)).toBe(true);
    expect(pidNames(stranger.pid!, dir)).toBe(false);
    mkdirSync(join(dir, 'pids'));
    writeFileSync(join(dir, 'pids', 'coordinator-c1.pid'), String(ours.pid));
    writeFileSync(join(dir, 'pids', 'reused.pid'), String(stranger.pid));
    // a prefix no namespace has: processes only
    expect(cleanupNetns(dir, 'slotctl-no-such-prefix-\0').processes).toBe(1);
    await exited(ours);
    expect(ours.signalCode).toBe('SIGKILL');
    expect(stranger.exitCode).toBeNull();
  } finally {
    ours.kill('SIGKILL');
    stranger.kill('SIGKILL');
  }
});
