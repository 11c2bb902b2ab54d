// expect() over mail-compare.ts: master and replica hold the same mail, and there was mail to compare. The loopback
// tests compare in this process; the namespace-cluster checks pass a runner that compares inside the client
// namespace (test/cluster/checks.ts expectReplicasMatch).
import { expect } from 'vitest';
import { type CompareOptions, compareUntilEqual, type PairResult } from './mail-compare.js';

export interface Pair {
  name: string;
  master: string;
  replica: string;
}

export type CompareRunner = (pairs: readonly Pair[], timeoutMs: number, options: CompareOptions) => Promise<PairResult[]>;

/** Each pair agrees (within `timeoutMs`, 60 s by default) and holds mail unless `allowEmpty`; returns the snapshots. */
export async function expectSameMail(pairs: readonly Pair[], options: CompareOptions & { timeoutMs?: number; allowEmpty?: boolean } = {}, run: CompareRunner = compareUntilEqual): Promise<PairResult[]> {
  expect(pairs.length, 'pairs to compare').toBeGreaterThan(0);
  const results = await run(pairs, options.timeoutMs ?? 60_000, options);
  expect(results.map((r) => r.name)).toEqual(pairs.map((p) => p.name));
  for (const [i, r] of results.entries()) {
    expect(r.diffs, `${r.name}: master ${pairs[i]!.master} and replica ${pairs[i]!.replica} differ`).toEqual([]);
    // two empty sides agree and prove nothing
    if (!options.allowEmpty) expect(r.messages, `${r.name}: messages compared`).toBeGreaterThan(0);
  }
  return results;
}
