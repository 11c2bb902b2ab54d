// Loopback test clusters (tools/local-cluster.ts) put machines, slots and service IPs in 127.NET.0.0/16 and name
// their stores PREFIX01…: test files run side by side, and two of them in one block share addresses (one agent
// takes the other's service IP), two with one prefix share slot log files under /dev/log. Every file takes its
// block from here; loopback-blocks.test.ts fails on a duplicate and on a file that picks its own.
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LoopbackBlock {
  net: number;
  prefix: string;
}

/** Test files, by path from the repository root. */
export const LOOPBACK_BLOCKS: Readonly<Record<string, LoopbackBlock>> = {
  'test/sessions.test.ts': { net: 41, prefix: 'se' },
  'test/cli.test.ts': { net: 42, prefix: 'cl' },
  'test/replication.test.ts': { net: 43, prefix: 're' },
  'test/auth.test.ts': { net: 44, prefix: 'au' },
  'test/stall.test.ts': { net: 46, prefix: 'st' },
  'test/cleanup.test.ts': { net: 47, prefix: 'cu' },
  'test/peer-trust.test.ts': { net: 48, prefix: 'pt' },
  'test/no-root-path.test.ts': { net: 56, prefix: 'nr' },
  'test/observe.test.ts': { net: 57, prefix: 'ob' },
  'test/agent-metrics.test.ts': { net: 58, prefix: 'am' },
  'test/preflight.test.ts': { net: 59, prefix: 'pf' },
  'test/start-hold.test.ts': { net: 60, prefix: 'sh' },
};

/** Blocks used outside the test files (named by the file that uses them), which no test may take. */
export const RESERVED_BLOCKS: Readonly<Record<number, string>> = {
  0: 'tools/local-cluster.ts (the demo) and the TWO_MACHINES fixture (test/support/fixtures.ts)',
  45: 'bench/cleanup.ts',
  50: 'bench/slots.ts',
  51: 'bench/slots.ts',
};

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The block of the calling test file: `loopbackBlock(import.meta.url)`. Throws for a file not listed. */
export function loopbackBlock(fileUrl: string): LoopbackBlock {
  const path = relative(ROOT, fileURLToPath(fileUrl));
  const block = LOOPBACK_BLOCKS[path];
  if (!block) throw new Error(`${path} has no loopback block: add it to LOOPBACK_BLOCKS in test/support/loopback-blocks.ts`);
  return block;
}
