import { getPriority } from 'node:os';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';

/** Runs setOwnNice(7) in a child node process (the test's own process keeps its priority), as its session's leader or not. */
async function niceChild(ownSession: boolean) {
  const script = [
    `import { setOwnNice, ownThreads, threadNice, autogroup, sessionLeader } from ${JSON.stringify(new URL('./priority.ts', import.meta.url).href)};`,
    'const said = [];',
    'const log = { info(o, m) { said.push(m); }, warn(o, m) { said.push(`warn: ${m}`); } };',
    'const before = { threads: ownThreads().map(threadNice), group: autogroup() };',
    'setOwnNice(7, log);',
    'console.log(JSON.stringify({ leader: sessionLeader(), before, after: { threads: ownThreads().map(threadNice), group: autogroup() }, said }));',
  ].join('\n');
  const run = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false, detached: ownSession });
  expect(run.stderr).toBe('');
  type Seen = { threads: number[]; group?: { name: string; nice: number } };
  return JSON.parse(run.stdout) as { leader: boolean; before: Seen; after: Seen; said: string[] };
}

describe('setOwnNice', () => {
  it('sets every thread of the process, also the ones V8 started before it ran', async () => {
    const { before, after } = await niceChild(false);
    expect(before.threads.length, 'threads of a node process').toBeGreaterThan(1);
    expect(before.threads.filter((n) => n !== 7).length).toBeGreaterThan(0);
    expect(after.threads).toEqual(after.threads.map(() => 7));
  });

  it("sets its scheduling group's nice value when it leads its session, and only then", async () => {
    const [leader, member] = await Promise.all([niceChild(true), niceChild(false)]);
    expect(leader.leader).toBe(true);
    expect(member.leader).toBe(false);
    if (leader.before.group === undefined) {
      // a kernel without autogroups: nothing to set, nothing to warn about
      expect(leader.after.group).toBeUndefined();
    } else {
      expect(leader.before.group.nice).toBe(0);
      expect(leader.after.group).toEqual({ name: leader.before.group.name, nice: 7 });
    }
    // the member's group is its caller's (the test runner's): left as it was
    expect(member.after.group).toEqual(member.before.group);
    const warned = member.said.filter((m) => m.startsWith('warn'));
    if (member.before.group === undefined) {
      // no autogroups, or the caller runs in the session of PID 1 (a container, a CI runner), whose tasks the kernel
      // schedules in the root group, ranked by their own nice value: nothing to warn about
      expect(warned).toEqual([]);
    } else expect(warned.join('\n')).toMatch(/warn: this process shares its scheduling group/);
  });
});

describe('takePriorityEarly', () => {
  /** A bin script's first lines in a child node process: what nice values it took from `args`. */
  async function early(args: string[], ownSession: boolean) {
    const script = [
      `import { takePriorityEarly, ownThreads, threadNice, autogroup } from ${JSON.stringify(new URL('./priority.ts', import.meta.url).href)};`,
      `takePriorityEarly(${JSON.stringify(args)});`,
      'console.log(JSON.stringify({ main: threadNice(process.pid), group: autogroup() }));',
    ].join('\n');
    const run = await execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { reject: false, detached: ownSession });
    expect(run.stderr).toBe('');
    return JSON.parse(run.stdout) as { main: number; group?: { nice: number } };
  }

  it("takes --nice (or the daemons' default) for the main thread, and for the group when it leads its session", async () => {
    const [given, byDefault, member, invalid, outOfRange, missing] = await Promise.all([
      early(['node', 'bin', '--nice=5'], true),
      early(['node', 'bin', '--config', 'x'], true),
      early(['node', 'bin', '--nice', '6'], false),
      early(['node', 'bin', '--nice', 'abc'], true),
      early(['node', 'bin', '--nice', '50'], true),
      early(['node', 'bin', '--nice'], true),
    ]);
    expect(given.main).toBe(5);
    expect(byDefault.main).toBe(process.getuid?.() === 0 ? -10 : byDefault.main); // lowering needs root
    expect(member.main).toBe(6);
    // the caller's, left for main.js to refuse with a clear error
    for (const refused of [invalid, outOfRange, missing]) expect(refused.main).toBe(getPriority());
    if (given.group !== undefined) {
      expect(given.group.nice).toBe(5);
      if (process.getuid?.() === 0) expect(byDefault.group?.nice).toBe(-10);
      for (const refused of [invalid, outOfRange, missing]) expect(refused.group?.nice).toBe(0);
    }
  });
});
