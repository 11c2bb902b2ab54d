// The request runner's bookkeeping over fake handlers and slots (pure logic): once per id, never twice at once, asked
// again while it may not run, waits before background, answers reported, kept in a store when given one.
import { createLogger, type DesiredSlot__Output } from '@slotctl/shared';
import { describe, expect, it } from 'vitest';
import type { SlotSupervisor } from '../slot/supervisor.js';
import type { RequestHandler, RequestResult, RequestServices } from './handler.js';
import { requestOf } from './handler.js';
import { RequestRunner } from './runner.js';

const log = createLogger('test', { level: 'silent' });
const slot = (lifecycle = 'serving') => ({ name: 's01-m1', lifecycle, layout: {} }) as unknown as SlotSupervisor;
const desired = (requests: DesiredSlot__Output['requests'], over: Partial<DesiredSlot__Output> = {}) => ({ store: 's01', epoch: 4, role: 'MASTER', stopped: false, requests, ...over }) as DesiredSlot__Output;

/** A handler for the replay request that records its runs; `release` lets a run finish. */
function fake(over: Partial<RequestHandler> = {}) {
  const runs: string[] = [];
  let release: () => void = () => undefined;
  const handler: RequestHandler = {
    name: 'replay',
    waits: true,
    requested: (d) => requestOf(d, 'replay')?.id,
    mayRun: (s) => s.lifecycle === 'stopped',
    run: async ({ id }) => {
      runs.push(id);
      await new Promise<void>((r) => (release = r));
      return { op: id };
    },
    asResult: (r) => ({ replay: { op: r.op, ok: true, replayed: [], failedFile: '', error: '', finishedAt: '', ms: 0, mailboxes: [] } }),
    ...over,
  };
  return { handler, runs, finish: () => release() };
}

const runner = (handlers: RequestHandler[], extra: Partial<ConstructorParameters<typeof RequestRunner>[0]> = {}) => {
  let changes = 0;
  const r = new RequestRunner({ handlers, services: {} as RequestServices, log, onChange: () => changes++, ...extra });
  return { r, changes: () => changes };
};

const tick = () => new Promise((r) => setImmediate(r));

describe('the slot request runner', () => {
  it('reports a running handler\'s progress while it runs, and only then', async () => {
    const progress = { op: 'sw-1', usersDone: 1, users: 4, mailboxesDone: 2, mailboxes: 8, messagesDone: 10, messages: 40, bytesDone: 100, bytes: 400, startedAt: '', updatedAt: '' };
    let tell: () => void = () => undefined;
    const f = fake({
      run: async ({ id, changed }) => {
        tell = changed;
        await new Promise<void>((r) => setTimeout(r, 20));
        return { op: id };
      },
      progress: () => ({ seedProgress: progress }),
    });
    const { r, changes } = runner([f.handler]);
    const run = r.drive(slot('stopped'), desired([{ id: 'sw-1', replay: {}, kind: 'replay' }]));
    await tick();
    tell();
    expect(changes()).toBe(1);
    expect(r.report('s01-m1')).toEqual([{ seedProgress: progress }]);
    await run;
    expect(r.report('s01-m1')).toEqual([{ replay: expect.objectContaining({ op: 'sw-1' }) }]);
  });

  it('runs a request once per id, never twice at once, and reports its answer', async () => {
    const f = fake();
    const { r, changes } = runner([f.handler]);
    const d = desired([{ id: 'sw-1', replay: {}, kind: 'replay' }]);
    const first = r.drive(slot('stopped'), d);
    await tick();
    // the same desired state again while it runs: not started twice
    void r.drive(slot('stopped'), d);
    await tick();
    expect(f.runs).toEqual(['sw-1']);
    expect(r.busy('s01-m1', 'replay')).toBe(true);
    f.finish();
    await first;
    expect(r.last('s01-m1', 'replay')).toEqual({ op: 'sw-1' });
    expect(r.report('s01-m1')).toEqual([{ replay: expect.objectContaining({ op: 'sw-1', ok: true }) }]);
    expect(changes()).toBe(1);
    // answered under its id: not again; a new id runs
    await r.drive(slot('stopped'), d);
    expect(f.runs).toEqual(['sw-1']);
    const next = r.drive(slot('stopped'), desired([{ id: 'sw-2', replay: {}, kind: 'replay' }]));
    await tick();
    f.finish();
    await next;
    expect(f.runs).toEqual(['sw-1', 'sw-2']);
  });

  it('leaves a request the slot may not run for the next desired state, and runs nothing not asked for', async () => {
    const f = fake();
    const { r } = runner([f.handler]);
    await r.drive(slot('serving'), desired([{ id: 'sw-1', replay: {}, kind: 'replay' }]));
    await r.drive(slot('stopped'), desired([]));
    expect(f.runs).toEqual([]);
    const later = r.drive(slot('stopped'), desired([{ id: 'sw-1', replay: {}, kind: 'replay' }]));
    await tick();
    f.finish();
    await later;
    expect(f.runs).toEqual(['sw-1']);
  });

  it('awaits the handlers that wait, in order, and leaves the others running', async () => {
    const order: string[] = [];
    const a = fake({ name: 'a', mayRun: () => true, run: async ({ id }) => (order.push(`a:${id}`), { op: id }) });
    const b = fake({ name: 'b', waits: false, mayRun: () => true, run: async ({ id }) => (order.push(`b:${id}`), await new Promise(() => undefined)) as RequestResult });
    const c = fake({ name: 'c', mayRun: () => true, run: async ({ id }) => (order.push(`c:${id}`), { op: id }) });
    const { r } = runner([a.handler, b.handler, c.handler]);
    await r.drive(slot(), desired([{ id: 'x', replay: {}, kind: 'replay' }]));
    expect(order).toEqual(['a:x', 'b:x', 'c:x']);
    expect(r.busy('s01-m1', 'b')).toBe(true);
  });

  it('records nothing when a handler answers nothing (it may run again), and what failed() says when it throws', async () => {
    let n = 0;
    const nothing = fake({ name: 'confirm', mayRun: () => true, run: async () => (n++, undefined) });
    const throws = fake({ name: 'boom', mayRun: () => true, run: async () => { throw new Error('disk full'); }, failed: (id, error) => ({ op: id, error }) as RequestResult });
    const { r } = runner([nothing.handler, throws.handler]);
    const d = desired([{ id: 'x', replay: {}, kind: 'replay' }]);
    await r.drive(slot(), d);
    await r.drive(slot(), d);
    expect(n).toBe(2);
    expect(r.last('s01-m1', 'confirm')).toBeUndefined();
    expect(r.last('s01-m1', 'boom')).toEqual({ op: 'x', error: 'disk full' });
  });

  it('keeps the answers of a handler with a store there (they outlive the agent), the others until the slot leaves', async () => {
    const saved = new Map<string, RequestResult>();
    const store = { get: (s: string) => saved.get(s), save: async (s: string, v: RequestResult) => void saved.set(s, v) };
    const persisted = fake({ mayRun: () => true, run: async ({ id }) => ({ op: id }) });
    const memory = fake({ name: 'check', mayRun: () => true, run: async ({ id }) => ({ op: id }) });
    const { r } = runner([persisted.handler, memory.handler], { stores: { replay: store } });
    await r.drive(slot(), desired([{ id: 'x', replay: {}, kind: 'replay' }]));
    expect(saved.get('s01-m1')).toEqual({ op: 'x' });
    expect(r.last('s01-m1', 'check')).toEqual({ op: 'x' });
    r.forget('s01-m1');
    expect(r.last('s01-m1', 'check')).toBeUndefined();
    // a new runner (an agent restart) answers from the store: no second run
    const again = fake({ mayRun: () => true });
    const { r: r2 } = runner([again.handler], { stores: { replay: store } });
    await r2.drive(slot(), desired([{ id: 'x', replay: {}, kind: 'replay' }]));
    expect(again.runs).toEqual([]);
  });
});
