import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

describe('setOwnNice', () => {
  it('sets every thread of the process, also the ones V8 started before it ran', async () => {
    // in a child process: the test's own process keeps its priority
    const script = [
      "import { setOwnNice, ownThreads, threadNice } from './packages/shared/src/priority.ts';",
      'const log = { info() {}, warn(o, m) { console.error(m); } };',
      'const before = ownThreads().map(threadNice);',
      'setOwnNice(7, log);',
      'console.log(JSON.stringify({ before, after: ownThreads().map(threadNice) }));',
    ].join('\n');
    const run = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false });
    expect(run.stderr).toBe('');
    const { before, after } = JSON.parse(run.stdout) as { before: number[]; after: number[] };
    expect(before.length, 'threads of a node process').toBeGreaterThan(1);
    expect(before.filter((n) => n !== 7).length).toBeGreaterThan(0);
    expect(after).toEqual(after.map(() => 7));
  });
});
