import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { asCyrus, asCyrusTool } from './install.js';

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

  /** Starts `run` from a parent shell, SIGKILLs the parent, and says whether the child is still running. */
  async function outlivesParent(run: { file: string; args: string[] }): Promise<boolean> {
    const parent = execa('sh', ['-c', '"$@" </dev/null >/dev/null 2>&1 & echo $!; exec sleep 30', 'sh', run.file, ...run.args], { reject: false, buffer: false });
    const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    await new Promise((r) => setTimeout(r, 300)); // through setsid, nice and setpriv to the tool itself
    parent.kill('SIGKILL');
    await parent;
    await new Promise((r) => setTimeout(r, 300));
    let state = '';
    try {
      state = /State:\s+(\S)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
    } catch {
      // gone
    }
    const alive = state !== '' && state !== 'Z'; // a zombie died (PID 1 may not reap it at once)
    if (alive) process.kill(pid, 'SIGKILL');
    return alive;
  }

  it('dies with the agent that started it, even by SIGKILL; a cyrmaster does not', async () => {
    expect(process.getuid?.(), 'as root: the agent starts Cyrus programs through setpriv').toBe(0);
    expect(await outlivesParent(asCyrusTool('/bin/sleep', ['60'])), 'a one-shot tool outlived its agent').toBe(false);
    expect(await outlivesParent(asCyrus('/bin/sleep', ['60'])), 'a slot\'s cyrmaster must outlive an agent restart').toBe(true);
  });
});
