// Tests only: where the coordinator kills itself (SIGKILL) in an operation, as `STEP:before|after`. Either fixed for
// the process's life (SLOTCTL_TEST_CRASH_AT), or read from a file at every step (SLOTCTL_TEST_CRASH_FILE), so a
// test arms and disarms a running coordinator — the leader of several — without restarting it. Unset: never.
import { readFileSync } from 'node:fs';

export function testCrashPoint(env: NodeJS.ProcessEnv = process.env): () => string | undefined {
  const fixed = env.SLOTCTL_TEST_CRASH_AT;
  const file = env.SLOTCTL_TEST_CRASH_FILE;
  if (file) {
    return () => {
      try {
        return readFileSync(file, 'utf8').trim() || fixed;
      } catch {
        return fixed;
      }
    };
  }
  return () => fixed;
}
