// Golden files, one rule for every golden test: compare byte for byte; UPDATE_GOLDEN=1 rewrites them on a
// developer's machine. In CI (CI set, as CI services do) nothing is ever written: a missing file fails and
// UPDATE_GOLDEN is ignored, so that a run can neither pass by writing its own expectation nor change the tree.
// Outside CI a missing file is written and still fails, so that nobody mistakes it for a pass.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';

export type GoldenAction = 'compare' | 'write' | 'write-and-fail' | 'fail-missing';

export const inCi = (env: NodeJS.ProcessEnv): boolean => !!env.CI && env.CI !== 'false' && env.CI !== '0';

/** What to do with a golden file: the decision alone, so that it is tested for every environment. */
export function goldenAction(exists: boolean, env: NodeJS.ProcessEnv): GoldenAction {
  if (inCi(env)) return exists ? 'compare' : 'fail-missing';
  if (env.UPDATE_GOLDEN === '1') return 'write';
  return exists ? 'compare' : 'write-and-fail';
}

export function expectGolden(path: string, actual: string, env: NodeJS.ProcessEnv = process.env): void {
  const action = goldenAction(existsSync(path), env);
  if (action === 'fail-missing') throw new Error(`golden file ${path} is missing: generate it with UPDATE_GOLDEN=1 outside CI, review it and commit it`);
  if (action === 'write' || action === 'write-and-fail') writeFileSync(path, actual);
  if (action === 'write-and-fail') throw new Error(`golden file ${path} did not exist: written now, review it and run again`);
  expect(actual, `golden file ${path}`).toBe(readFileSync(path, 'utf8'));
}
