// Following a persisted operation (switchover, drain, failover, recovery, rebalance, re-replication) until it ends.
// It polls (every 100 ms) and prints each recorded step as it happens, or with --json one JSON object per line
// (type step | store | result) for scripts. Shared by every verb that starts operations and by `operations show`.
import { UnavailableError, type OperationInfo__Output } from '@slotctl/shared';
import type { Admin } from './admin-client.js';
import { EXIT } from './context.js';
import { clock, seconds } from './format.js';

function line(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** The one-paragraph outcome of an operation, as printed when it ends (or when it was refused at once). */
export function verdict(op: OperationInfo__Output): string {
  const took = seconds(op.createdAt, op.updatedAt);
  if (op.kind === 'drain' || op.kind === 'rebalance') {
    const moved = op.children.filter((c) => c.state === 'succeeded');
    const notMoved = op.children.filter((c) => c.state !== 'succeeded' && c.state !== 'running');
    const conflicts = Object.entries((JSON.parse(op.resultJson || '{}') as { conflicts?: Record<string, string> }).conflicts ?? {});
    const lines = [`${op.kind === 'drain' ? `drain of ${op.machine}` : 'rebalance'}: ${op.state} in ${took}: ${moved.length} store(s) moved, ${notMoved.length + conflicts.length} not moved`];
    for (const c of notMoved) lines.push(`  ${c.store}: ${c.state}: ${c.error}`);
    for (const [store, why] of conflicts) lines.push(`  ${store}: not started: ${why}`);
    if (op.state !== 'succeeded' && op.error && notMoved.length + conflicts.length === 0) lines.push(`  ${op.error}`);
    return lines.join('\n');
  }
  const p = JSON.parse(op.paramsJson || '{}') as { from?: string; to?: string; epoch?: number };
  if (op.kind !== 'switchover') return `${op.kind} of ${op.store}: ${op.state === 'succeeded' ? 'succeeded' : op.state.toUpperCase()} after ${took}${op.error ? `: ${op.error}` : ''}`;
  if (op.state === 'succeeded') return `switchover of ${op.store}: succeeded in ${took}: ${p.to} is master (epoch ${(p.epoch ?? 0) + 1}), ${p.from} its replica`;
  if (op.state === 'running') return `switchover of ${op.store}: running, at step ${op.step} (${op.id})`;
  return `switchover of ${op.store}: ${op.state.toUpperCase()} after ${took}: ${op.error}${op.step === 'rolled-back' ? `\n  rolled back: ${p.from} is still the master, the database is unchanged` : ''}`;
}

/** How long following rides out coordinators that cannot be reached (several of them: a failover, see poll). */
const FAILOVER_WAIT_MS = 30_000;

/**
 * One look at the operation. With several coordinators, one that cannot be reached is taken for a failover (the
 * operation is persisted and goes on under the new leader): the look is made again, for up to FAILOVER_WAIT_MS, and
 * said once on stderr. With one coordinator the error ends the wait, as it always did.
 */
async function poll(a: Admin, id: string, deadline: number): Promise<OperationInfo__Output> {
  const since = Date.now();
  for (let said = false; ; said = true) {
    try {
      return (await a.getOperation(id)).operation!;
    } catch (err) {
      if (!(err instanceof UnavailableError) || a.coordinators.length < 2 || Date.now() > deadline || Date.now() - since > FAILOVER_WAIT_MS) throw err;
      if (!said) process.stderr.write(`slotctl: ${err.message}; still following ${id} (a coordinator failover?)\n`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** Polls an operation until it ends, printing every step (and, for a drain, every store) as it happens. */
export async function follow(a: Admin, id: string, json: boolean, timeoutMs: number): Promise<OperationInfo__Output> {
  const deadline = Date.now() + timeoutMs;
  let steps = 0;
  const childState = new Map<string, string>();
  for (;;) {
    const op = await poll(a, id, deadline);
    for (const s of op.steps.slice(steps)) {
      if (json) line({ type: 'step', op: op.id, step: s.step, at: s.at, rule: s.rule, reason: s.reason });
      else process.stdout.write(`  ${clock(s.at)}  ${seconds(op.createdAt, s.at).padStart(8)}  ${s.step.padEnd(12)} ${s.reason}\n`);
    }
    steps = op.steps.length;
    for (const c of op.children) {
      const now = `${c.state}/${c.step}`;
      if (childState.get(c.id) === now) continue;
      childState.set(c.id, now);
      if (json) line({ type: 'store', op: c.id, store: c.store, state: c.state, step: c.step, error: c.error });
      else process.stdout.write(`  ${c.store.padEnd(12)} ${c.state.padEnd(10)} ${c.state === 'running' ? c.step : c.state === 'succeeded' ? `moved in ${seconds(c.createdAt, c.updatedAt)}` : c.error}\n`);
    }
    if (op.state !== 'running') {
      if (json) line({ type: 'result', operation: op });
      else process.stdout.write(`${verdict(op)}\n`);
      if (op.state !== 'succeeded') process.exitCode = EXIT.error;
      return op;
    }
    if (Date.now() > deadline) {
      throw new UnavailableError(`operation ${id} is still running (at step ${op.step}) after ${timeoutMs / 1000} s of waiting`, {
        hint: `it goes on without you: follow it with slotctl operations show ${id} --wait`,
      });
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Follows one operation that a verb started; exit 1 unless it succeeded. */
export async function followOne(a: Admin, op: OperationInfo__Output, json: boolean, timeoutMs: number): Promise<void> {
  const end = await follow(a, op.id, json, timeoutMs);
  if (end.state !== 'succeeded') process.exitCode = EXIT.error;
}

/** Follows several operations one after the other (one per store of a machine); exit 1 unless all succeeded. */
export async function followAll(a: Admin, ops: readonly OperationInfo__Output[], json: boolean, timeoutMs: number): Promise<void> {
  let failed = false;
  for (const op of ops) {
    if (!json) process.stdout.write(`${op.kind} of ${op.store}: ${op.id}\n`);
    const end = await follow(a, op.id, json, timeoutMs);
    failed ||= end.state !== 'succeeded';
  }
  if (failed) process.exitCode = EXIT.error;
}

/** The answer to a dry run (or to a request refused outright): would it run, every problem, the steps. */
export function printPreview(what: string, reply: { plan: string[]; problems: string[] }, json: boolean, extra: Record<string, unknown>): void {
  if (json) process.stdout.write(`${JSON.stringify({ ...extra, wouldRun: reply.problems.length === 0, problems: reply.problems, plan: reply.plan })}\n`);
  else {
    process.stdout.write(`${what}: ${reply.problems.length ? 'would be REFUSED' : 'would run'}\n`);
    for (const p of reply.problems) process.stdout.write(`  problem: ${p}\n`);
    if (reply.plan.length) process.stdout.write(`steps:\n${reply.plan.map((l) => `  ${l}`).join('\n')}\n`);
  }
  if (reply.problems.length) process.exitCode = EXIT.error;
}
