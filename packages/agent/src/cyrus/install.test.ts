import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { asCyrusTool } from './install.js';

/** PID and session ID from a /proc/PID/stat line. */
function ids(stat: string): { pid: number; session: number } {
  const fields = stat.trim().slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pid: Number(stat.trim().split(' ')[0]), session: Number(fields[3]) };
}

describe('asCyrusTool', () => {
  it('runs a one-shot tool in a session of its own (its own scheduling group), with the PID execa knows', async () => {
    const { file, args } = asCyrusTool('/bin/sh', ['-c', 'cat /proc/$$/stat']);
    const child = execa(file, args, { reject: false });
    const run = await child;
    expect(run.exitCode, run.stderr).toBe(0);
    const tool = ids(run.stdout);
    expect(tool.pid).toBe(child.pid);
    expect(tool.session, 'the tool leads its own session').toBe(tool.pid);
    // a child spawned the plain way stays in the session of whoever spawned it
    const plain = ids((await execa('sh', ['-c', 'cat /proc/$$/stat'])).stdout);
    expect(plain.session).not.toBe(plain.pid);
  });
});
