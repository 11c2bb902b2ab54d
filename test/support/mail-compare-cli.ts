// compareUntilEqual (mail-compare.ts) run where the addresses are: inside a namespace cluster's client namespace
// (`ip netns exec NS node --import tsx test/support/mail-compare-cli.ts JSON`). One JSON request on argv, the
// PairResult[] on stdout.
//   '{"pairs":[{"name":"n01","master":"10.231.3.1","replica":"10.231.4.1"}],"users":["ann"],"timeoutMs":60000}'
import { compareUntilEqual, type CompareOptions } from './mail-compare.js';

const request = JSON.parse(process.argv[2] ?? '{}') as { pairs: { name: string; master: string; replica: string }[]; timeoutMs: number } & CompareOptions;
const results = await compareUntilEqual(request.pairs, request.timeoutMs, request);
process.stdout.write(`${JSON.stringify(results)}\n`);
