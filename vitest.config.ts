import { readdirSync, readFileSync } from 'node:fs';
import { configDefaults, defineConfig } from 'vitest/config';

// A namespace cluster (5 machines × 8 Cyrus slots, agents, fences, a load generator) takes both cores of a small
// host by itself; the loopback tests beside it made its leases, load targets and split-brain watch depend on what
// else happened to run. So the suite runs in two groups: first every other file, two at a time, then the files that
// build a namespace cluster, one at a time with the host to themselves. The second group is found by reading the
// files directly under test/ (whoever writes `new NetnsCluster(` or `runSoak(` there joins it), so no list can fall
// out of date.
const TEST_DIR = new URL('./test/', import.meta.url);
const NAMESPACE_FILES = readdirSync(TEST_DIR)
  .filter((f) => f.endsWith('.test.ts') && /new NetnsCluster\(|runSoak\(/.test(readFileSync(new URL(f, TEST_DIR), 'utf8')))
  .map((f) => `test/${f}`);

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    globalSetup: ['test/support/global-setup.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'loopback',
          include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...NAMESPACE_FILES],
          // Integration tests start real processes; two cores, so keep parallelism modest.
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'namespace',
          include: NAMESPACE_FILES,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
