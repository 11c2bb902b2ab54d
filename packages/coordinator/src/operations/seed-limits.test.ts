import { describe, expect, it } from 'vitest';
import type { OperationRow } from '../db/rows.js';
import { seedSlotProblem, seedsRunning } from './seed-limits.js';

const op = (id: string, kind: string, step: string, masterMachine: string, targetMachine: string): OperationRow =>
  ({ id, kind, step, state: 'running', params: { masterMachine, targetMachine } }) as unknown as OperationRow;

describe('seed limits', () => {
  it('counts the operations that copy: from create to verify, re-replications and replica moves alike', () => {
    const running = [op('mv-1', 'move-replica', 'seed', 'm1', 'm3'), op('mv-2', 'move-replica', 'catch-up', 'm1', 'm4'), op('rr-1', 'rereplicate', 'verify', 'm2', 'm4'), op('mv-3', 'move-replica', 'preflight', 'm2', 'm5'), op('sw-1', 'switchover', 'catch-up', 'm1', 'm2')];
    expect(seedsRunning(running).map((o) => o.id)).toEqual(['mv-1', 'rr-1']);
  });

  it('holds a seed back at the cluster-wide limit and at each machine\'s, naming which', () => {
    const running = [op('mv-1', 'move-replica', 'seed', 'm1', 'm3')];
    const self = { id: 'mv-2', masterMachine: 'm2', targetMachine: 'm4' };
    expect(seedSlotProblem(self, running, { cluster: 2, perMachine: 1 })).toBe('');
    expect(seedSlotProblem(self, running, { cluster: 1, perMachine: 1 })).toBe('no free seed slot (1 running, limit 1: --max-seeds): mv-1');
    expect(seedSlotProblem({ ...self, targetMachine: 'm3' }, running, { cluster: 2, perMachine: 1 })).toBe('no free seed slot on m3 (1 copying from or to it, limit 1: --max-seeds-per-machine): mv-1');
    expect(seedSlotProblem({ ...self, masterMachine: 'm1' }, running, { cluster: 2, perMachine: 2 })).toBe('');
    // itself does not count (a resumed operation)
    expect(seedSlotProblem({ id: 'mv-1', masterMachine: 'm1', targetMachine: 'm3' }, running, { cluster: 1, perMachine: 1 })).toBe('');
  });
});
