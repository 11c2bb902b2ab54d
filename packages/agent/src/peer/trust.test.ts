import { describe, expect, it } from 'vitest';
import { UnavailableError, ValidationError } from '@slotctl/shared';
import { batches, checkPeerNames, MAX_NAMES_PER_REQUEST, peerCallProblem, WorkGate } from './trust.js';

describe('peerCallProblem', () => {
  const partners = new Set(['m2', 'm3']);

  it('serves the agent of a partner machine speaking for itself', () => {
    expect(peerCallProblem({ role: 'agent', name: 'm2' }, 'm1', partners)).toBeUndefined();
    expect(peerCallProblem({ role: 'agent', name: 'm2' }, 'm1', partners, 'm2')).toBeUndefined();
  });

  it('refuses a machine that shares no store, another role, no certificate, and itself', () => {
    expect(peerCallProblem({ role: 'agent', name: 'm9' }, 'm1', partners)).toBe('agent m9 shares no store with m1');
    expect(peerCallProblem({ role: 'admin', name: 'm2' }, 'm1', partners)).toMatch(/for admin m2, not for an agent/);
    expect(peerCallProblem(undefined, 'm1', partners)).toMatch(/no slotctl certificate/);
    expect(peerCallProblem({ role: 'agent', name: 'm1' }, 'm1', partners)).toMatch(/shares no store/);
  });

  it('refuses a partner that speaks for another machine', () => {
    expect(peerCallProblem({ role: 'agent', name: 'm2' }, 'm1', partners, 'm3')).toBe('agent m2 asks as machine "m3": a partner speaks only for itself');
  });
});

describe('checkPeerNames', () => {
  it('accepts mailbox names up to the limit', () => {
    expect(() => checkPeerNames('mailbox', Array.from({ length: MAX_NAMES_PER_REQUEST }, (_, i) => `user.u${i}`))).not.toThrow();
  });

  it('refuses one more than the limit, naming it', () => {
    const names = Array.from({ length: MAX_NAMES_PER_REQUEST + 1 }, (_, i) => `user.u${i}`);
    expect(() => checkPeerNames('mailbox', names)).toThrow(ValidationError);
    expect(() => checkPeerNames('mailbox', names)).toThrow(`${MAX_NAMES_PER_REQUEST + 1} mailbox names in one request: at most ${MAX_NAMES_PER_REQUEST} are served`);
  });

  it('refuses patterns, options and control characters before they reach a command line', () => {
    for (const bad of ['*', 'user.%', '-C/etc/passwd', 'user.a\nb', '']) expect(() => checkPeerNames('mailbox', ['user.ok', bad]), bad).toThrow(ValidationError);
    expect(() => checkPeerNames('user', ['bob/x'])).toThrow(/contains "\/"/);
    expect(() => checkPeerNames('user', ['bob^smith'])).not.toThrow();
  });
});

describe('batches', () => {
  it('splits in order, none larger than the size', () => {
    expect(batches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(batches([], 2)).toEqual([]);
  });
});

describe('WorkGate', () => {
  const deferred = () => {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  };

  it('runs at most `limit` jobs at once, queues a few, refuses the rest at once', async () => {
    const gate = new WorkGate(2, 1);
    let active = 0;
    let most = 0;
    const gates = [deferred(), deferred(), deferred()];
    const job = (i: number) => async () => {
      active++;
      most = Math.max(most, active);
      await gates[i]!.promise;
      active--;
      return i;
    };
    const runs = [gate.run(job(0)), gate.run(job(1)), gate.run(job(2))];
    await expect(gate.run(job(0))).rejects.toThrow(UnavailableError);
    expect(gate.busy).toEqual({ running: 2, waiting: 1 });
    gates[0]!.resolve();
    await runs[0];
    await new Promise((r) => setImmediate(r));
    expect(gate.busy).toEqual({ running: 2, waiting: 0 });
    gates[1]!.resolve();
    gates[2]!.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2]);
    expect(most).toBe(2);
    expect(gate.busy).toEqual({ running: 0, waiting: 0 });
  });

  it('drops a waiting job whose caller gave up, and frees its turn', async () => {
    const gate = new WorkGate(1, 4);
    const first = deferred();
    let ran = false;
    const a = gate.run(() => first.promise);
    const b = gate.run(async () => void (ran = true), () => false);
    first.resolve();
    await a;
    await expect(b).rejects.toThrow(/gave up/);
    expect(ran).toBe(false);
    expect(await gate.run(async () => 'next')).toBe('next');
    expect(gate.busy).toEqual({ running: 0, waiting: 0 });
  });

  it('frees the turn of a job that throws', async () => {
    const gate = new WorkGate(1, 0);
    await expect(gate.run(async () => Promise.reject(new Error('mbexamine exited 75')))).rejects.toThrow('exited 75');
    expect(await gate.run(async () => 1)).toBe(1);
  });
});
