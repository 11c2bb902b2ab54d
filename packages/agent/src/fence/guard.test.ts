// FenceGuard's start: it waits for a fence that is slow to come up (a busy host), and says at once, with the fence's
// own words, why one died before it ran. The "fences" here are small scripts standing in for bin/slot-fence.js.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { FenceGuard, FenceStartError } from './guard.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    // a started stand-in exits by itself; make sure of it
    try {
      process.kill(Number(readFileSync(join(d, 'state', 'slot-fence.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // not started, or gone
    }
    rmSync(d, { recursive: true, force: true });
  }
});

/** A stand-in fence (its name holds "slot-fence", as the guard checks) running `body` with STATE its state dir. */
function standIn(body: string): { bin: string; stateDir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-guard-'));
  dirs.push(dir);
  const bin = join(dir, 'slot-fence-stand-in.js');
  writeFileSync(bin, `#!/usr/bin/env node\nconst STATE = process.argv[3];\n${body}\n`);
  chmodSync(bin, 0o755);
  return { bin, stateDir: join(dir, 'state') };
}

function guard(bin: string, stateDir: string) {
  mkdirSync(stateDir, { recursive: true });
  return new FenceGuard({ stateDir, bin, vip: { driver: 'loopback', iface: 'lo' }, log: createLogger('test', { level: 'silent' }) });
}

describe('FenceGuard.start', () => {
  it('waits for a fence that takes longer than the old 5 s limit to write its pid file', async () => {
    const { bin, stateDir } = standIn(`setTimeout(() => require('fs').writeFileSync(STATE + '/slot-fence.pid', process.pid + '\\n'), 6000); setTimeout(() => {}, 30000);`);
    const pid = await guard(bin, stateDir).start();
    expect(Number(readFileSync(join(stateDir, 'slot-fence.pid'), 'utf8'))).toBe(pid);
  }, 20_000);

  it('fails at once, naming the exit and the log that holds its stderr, when the fence dies before it runs', async () => {
    const { bin, stateDir } = standIn(`console.error('stand-in: cannot read fence.json'); process.exit(3);`);
    const err = await guard(bin, stateDir).start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FenceStartError);
    expect((err as Error).message).toMatch(/exited with code 3 before it ran \(see .*slot-fence\.log\)/);
    expect(readFileSync(join(stateDir, 'slot-fence.log'), 'utf8')).toContain('stand-in: cannot read fence.json');
  }, 20_000); // well under FENCE_START_TIMEOUT_MS: the guard did not wait for a process that is gone
});
