// The one runner of persisted operations, whatever their kind: evaluate a running operation over a fresh snapshot
// (its kind's view), record the row that fired — the operation's step and its event, one transaction — and only
// then run the row's action, between the crash hooks; resume after a restart by running the recorded step's action
// again (every action only writes desired state: idempotent); answer a cancel by the kind's policy. When no row
// fires, the kind's sentence says why the operation waits, stored when it changes.
import { ConflictError, NotFoundError, withContext } from '@slotctl/shared';
import type { OperationRow, OperationStep } from '../../db/rows.js';
import type { AnyKind, KindContext } from './kind.js';
import { decide, entryAction, ruleName, stateAfter } from './rule.js';

export interface RunnerOptions {
  /** The registry: every kind by its name. */
  kinds: ReadonlyMap<string, AnyKind>;
  /**
   * Test hook (SLOTCTL_TEST_CRASH_AT=STEP[:before|:after]): the coordinator kills itself with SIGKILL right after
   * recording STEP (before its action) or after the action, to prove that every step resumes.
   */
  crashAt?: () => string | undefined;
  /** Called after a cancel was recorded (the orchestrator evaluates again). */
  wake: () => void;
}

/** The function a row's action names (the kind's type guarantees one for every name). */
function actionOf(kind: AnyKind, name: string): (v: unknown, ctx: KindContext) => void {
  const act = (kind.actions as Record<string, ((v: unknown, ctx: KindContext) => void) | undefined>)[name];
  if (!act) throw new Error(`kind ${kind.name}: no action "${name}"`);
  return act;
}

export class OperationRunner {
  constructor(private readonly ctx: KindContext, private readonly options: RunnerOptions) {}

  /** Operations of a kind this coordinator does not know, said once each. */
  private readonly unknown = new Set<string>();

  /**
   * The operation's kind; undefined (logged once) for a kind this coordinator does not know — a database written by
   * a newer version: that operation is left as it is, and the others go on.
   */
  kind(op: OperationRow): AnyKind | undefined {
    const kind = this.options.kinds.get(op.kind);
    if (!kind && !this.unknown.has(op.id)) {
      this.unknown.add(op.id);
      this.ctx.log.error({ op: op.id, kind: op.kind }, `operation ${op.id} is of a kind this coordinator does not know ("${op.kind}"): left as it is (a database written by a newer slotctl?)`);
    }
    return kind;
  }

  /** Runs the action of an operation's recorded step again (a coordinator restart). */
  resume(op: OperationRow): void {
    const kind = this.kind(op);
    if (!kind) return;
    const action = entryAction(kind.rules, op.step);
    if (!action) return;
    const v = kind.view(op, this.ctx);
    if (v) actionOf(kind, action)(v, this.ctx);
  }

  /** Fires rows while they fire (at most 20 in one go); then stores why the operation waits, if that changed. */
  evaluate(op: OperationRow): void {
    for (let i = 0; i < 20 && op.state === 'running'; i++) {
      if (!this.step(op)) return;
      op = this.ctx.storage.operations.get(op.id)!;
    }
  }

  /** Why the operation waits; a sentence that cannot be made must not stop the evaluation of the others. */
  private waiting(kind: AnyKind, v: unknown, op: OperationRow): string {
    try {
      return kind.waiting(v);
    } catch (err) {
      this.ctx.log.error({ op: op.id, err: (err as Error).stack }, 'could not say why the operation waits (a bug)');
      return `(could not say why: ${(err as Error).message})`;
    }
  }

  /** One decision: true when a row fired and was recorded. */
  private step(op: OperationRow): boolean {
    const kind = this.kind(op);
    if (!kind) return false;
    const v = kind.view(op, this.ctx);
    if (!v) return this.record(op, { ...kind.gone(op), rule: `${op.step} -> done` }, kind.crashName('done'), () => undefined);
    const fired = decide(kind.rules, v);
    if (!fired) {
      const waiting = this.waiting(kind, v, op);
      if (waiting !== op.waiting) this.ctx.storage.operations.setWaiting(op.id, waiting);
      return false;
    }
    const { rule, detail } = fired;
    return this.record(
      op,
      { to: rule.to, state: stateAfter(rule, v), rule: ruleName(rule, op.step), reason: `${rule.reason}: ${detail}`, ...(rule.failure ? { error: detail } : {}), epoch: kind.epoch(v, rule), action: rule.action },
      kind.crashName(rule.to),
      () => actionOf(kind, rule.action)(v, this.ctx),
    );
  }

  /** Records a fired row (operation row + event, one transaction), then runs its action between the crash hooks. */
  private record(op: OperationRow, fired: OperationStep & { action?: string }, crashName: string, act: () => void): boolean {
    const { action, ...step } = fired;
    if (step.epoch === undefined) delete step.epoch;
    if (!this.ctx.storage.operations.advance(op, step)) return false;
    const log = withContext(this.ctx.log, { op: op.id, store: op.store ?? undefined, machine: op.machine ?? undefined, epoch: step.epoch });
    log.info({ rule: step.rule, action, state: step.state }, step.reason);
    this.crashHook(crashName, 'before');
    act();
    this.crashHook(crashName, 'after');
    return true;
  }

  private crashHook(step: string, when: 'before' | 'after'): void {
    const at = this.options.crashAt?.();
    if (!at) return;
    const [s, w = 'after'] = at.split(':');
    if (s === step && w === when) {
      this.ctx.log.warn({ step, when }, 'test hook: coordinator kills itself (SLOTCTL_TEST_CRASH_AT)');
      process.kill(process.pid, 'SIGKILL');
    }
  }

  /** An operator's cancel: refused when the operation ended or its kind cannot stop where it is. */
  cancel(id: string): OperationRow {
    const { storage } = this.ctx;
    const op = storage.operations.get(id);
    if (!op) throw new NotFoundError(`operation "${id}" does not exist`, { hint: 'list operations with `slotctl operations list --all`' });
    if (op.state !== 'running') throw new ConflictError(`operation ${id} already ended (${op.state})`);
    const kind = this.kind(op);
    if (!kind) throw new ConflictError(`operation ${id} is of a kind this coordinator does not know ("${op.kind}")`, { hint: 'cancel it with the slotctl version that started it' });
    const refused = kind.cancelRefusal(op);
    if (refused) throw new ConflictError(refused.message, refused.hint === undefined ? {} : { hint: refused.hint });
    storage.operations.requestCancel(id, 'operator asked to cancel: stop at the next safe point and roll back');
    this.options.wake();
    return storage.operations.get(id)!;
  }
}
