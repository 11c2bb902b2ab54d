// `npm run soak -- --minutes N --seed S [--lmtp-rate 6] [--imap-rate 4] [--keep]`: a nemesis soak on a 5 × 8
// namespace cluster (test/soak/runner.ts). Prints the verdict and the report, writes bench/results/soak.json (the
// figures BENCHMARKS.md quotes) and exits 1 when the run failed; --keep leaves the run's directory (history files,
// schedule, logs) for reading, and a failed run always leaves it. A failing run prints its seed: the same --seed and --minutes replay its schedule.
import { writeFileSync } from 'node:fs';
import { benchArg } from '../../bench/common.js';
import { removeDir, tempDir } from '../support/fixtures.js';
import { runSoak } from './runner.js';

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log('usage: npm run soak -- --minutes N [--seed S] [--lmtp-rate R] [--imap-rate R] [--keep]\n  a random seed is drawn (and printed) when --seed is missing; --seed S --minutes N replays a run');
  process.exit(0);
}
const minutes = Number(benchArg('minutes', '10'));
const seed = Number(benchArg('seed', String(Math.floor(Math.random() * 2 ** 32))));
if (!(minutes > 0) || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
  console.error(`soak: --minutes must be positive and --seed an integer 0…4294967295 (got ${benchArg('minutes', '')} and ${benchArg('seed', '')})`);
  process.exit(2);
}
const dir = tempDir('soak');
console.log(`soak: seed ${seed}, ${minutes} min, in ${dir}`);
const started = Date.now();
const result = await runSoak({ minutes, seed, dir, lmtpRate: Number(benchArg('lmtp-rate', '6')), imapRate: Number(benchArg('imap-rate', '4')) });
for (const line of result.lines) console.log(line);
const ops = result.report.summary.operations;
const count = (outcome: 'ok' | 'fail' | 'unknown') => Object.values(ops).reduce((n, o) => n + (o?.[outcome] ?? 0), 0);
const figures = {
  seed, minutes, passed: result.passed, wallMinutes: Math.round((Date.now() - started) / 6000) / 10,
  faults: result.schedule.faults, operatorActions: result.schedule.operator, severalDown: result.schedule.several,
  deliveriesAcked: ops.deliver?.ok ?? 0, imapAcked: count('ok') - (ops.deliver?.ok ?? 0), failed: count('fail'), unknown: count('unknown'),
  violations: result.report.summary.violations, messages: result.report.summary.messages,
  twoMasterMoments: result.report.twoMasterMoments.length, atRiskByState: result.atRiskByState, atRiskUnrecovered: result.report.atRiskUnexplained.length,
  unended: result.report.summary.violations.unended ?? 0, leftovers: result.leftovers.length, problems: result.problems, lateMs: Math.round(result.lateMs),
  at: new Date().toISOString(),
};
writeFileSync(new URL('../../bench/results/soak.json', import.meta.url), `${JSON.stringify(figures, null, 2)}\n`);
// a failed run keeps its directory whatever was asked: its agents' and coordinator's logs are the evidence (a failure
// once went unexplained because they were removed with it)
if (result.passed && !process.argv.includes('--keep')) removeDir(dir);
else console.log(`soak: kept ${dir}${result.passed ? '' : ' (the run failed: logs/, history-*.jsonl and schedule.txt are there)'}`);
process.exit(result.passed ? 0 : 1);
