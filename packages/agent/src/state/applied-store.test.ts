import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AppliedStore } from './applied-store.js';
import type { AppliedSlot } from './apply-plan.js';

const dirs: string[] = [];
const stateDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-applied-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const slot = { store: 's01', role: 'MASTER', epoch: 3 } as AppliedSlot;

describe('AppliedStore: the leadership term', () => {
  it('keeps the newest term beside the epochs across a restart, and reads a file written before terms', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'applied.json'), JSON.stringify({ format: 1, machine: 'm1', slots: { m1s1: slot } }));
    const store = new AppliedStore(dir, 'm1');
    expect(await store.load()).toEqual({ m1s1: slot });
    expect(store.term).toBe(0);
    await store.saveTerm(41);
    await store.saveTerm(40); // older: ignored
    expect(store.term).toBe(41);
    const again = new AppliedStore(dir, 'm1');
    expect(await again.load()).toEqual({ m1s1: slot });
    expect(again.term).toBe(41);
  });

  it('loses neither a term nor slots written at the same time', async () => {
    const dir = stateDir();
    const store = new AppliedStore(dir, 'm1');
    await store.load();
    await Promise.all([store.save({ m1s1: slot }), store.saveTerm(7), store.save({ m1s1: { ...slot, epoch: 4 } })]);
    expect(JSON.parse(readFileSync(store.path, 'utf8'))).toMatchObject({ term: 7, slots: { m1s1: { epoch: 4 } } });
  });

  it('refuses a term that is not a whole number', async () => {
    const dir = stateDir();
    writeFileSync(join(dir, 'applied.json'), JSON.stringify({ format: 1, machine: 'm1', slots: {}, term: 'x' }));
    await expect(new AppliedStore(dir, 'm1').load()).rejects.toThrow(/term/);
  });
});
