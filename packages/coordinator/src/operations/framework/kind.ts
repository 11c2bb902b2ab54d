// What an operation kind is: its rule table, how it reads its snapshot (the view), the actions its rows name, how a
// cancel is answered, what the crash hook calls its steps, and why it waits. The runner (runner.ts) knows nothing
// else of a kind: a new kind is one file in kinds/ (and its entry in kinds/index.ts) plus its table test.
import type { Logger } from '@slotctl/shared';
import { randomUUID } from 'node:crypto';
import type { ConflictError } from '@slotctl/shared';
import { OperationConflict, type NewOperation, type OperationKind as KindName, type OperationRow, type OperationStep } from '../../db/rows.js';
import type { Storage } from '../../db/storage.js';
import type { OperationSnapshot, Rule } from './rule.js';
import type { SeedLimits } from '../seed-limits.js';

/** What a kind's view and actions are given: the database, the agents, and the orchestrator's few knobs. */
export interface KindContext {
  storage: Storage;
  /** Re-sends desired state to these machines. */
  push: (machines: Iterable<string>) => void;
  connected: () => ReadonlySet<string>;
  log: Logger;
  /** Until then (epoch ms), agents may still be reconnecting to this (re)started coordinator. */
  graceUntil: () => number;
  /** Switchovers past their preflight at once, cluster-wide. */
  maxSwitchovers: number;
  /** Full copies (re-replication, replica moves) at once, cluster-wide and per machine. */
  seedLimits: SeedLimits;
  /** Starts a child switchover of a drain or rebalance (throws ConflictError when the store is busy). */
  startSwitchover: (store: string, options: { timeoutMs: number; parent: string; reason: string }) => void;
  /** Asks a running operation to stop where its kind allows; silent when it cannot. */
  cancelQuietly: (op: OperationRow) => void;
}

/** A refused cancel: the message and the hint of the ConflictError. */
export interface CancelRefusal {
  message: string;
  hint?: string;
}

export interface OperationKind<V extends OperationSnapshot = OperationSnapshot, A extends string = string> {
  name: KindName;
  /** The id's prefix (`sw` → `sw-1a2b3c4d`). */
  idPrefix: string;
  rules: readonly Rule<V, A>[];
  /** Each action in words (docs/ARCHITECTURE.md); 'none' needs none. */
  actionDocs: Partial<Record<A, string>>;
  /** The snapshot the rules read; undefined when what the operation works on left the cluster. */
  view: (op: OperationRow, ctx: KindContext) => V | undefined;
  actions: Record<A, (v: V, ctx: KindContext) => void>;
  /** The step written when the view cannot be built (the store or a slot was removed meanwhile). */
  gone: (op: OperationRow) => Omit<OperationStep, 'rule'>;
  /** The epoch the event of a fired row carries. */
  epoch: (v: V, rule: Rule<V, A>) => number | undefined;
  /** The name SLOTCTL_TEST_CRASH_AT knows a step by. */
  crashName: (step: string) => string;
  /** Why a cancel of this running operation is refused; undefined: it may be cancelled. */
  cancelRefusal: (op: OperationRow) => CancelRefusal | undefined;
  /** Why the operation waits at its step when no row fires, in one sentence. */
  waiting: (v: V) => string;
}

/** A kind whose own types are known, as the registry holds it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyKind = OperationKind<any, any>;

/** An action map whose actions all go through one function (a kind that carries its actions out in one switch). */
export function dispatchTo<V, A extends string>(names: readonly A[], act: (action: A, v: V, ctx: KindContext) => void): Record<A, (v: V, ctx: KindContext) => void> {
  return Object.fromEntries(names.map((name) => [name, (v: V, ctx: KindContext) => act(name, v, ctx)])) as Record<A, (v: V, ctx: KindContext) => void>;
}

/** A parent operation's cancel (drain, rebalance, relocations): every running child asked to stop where it may. */
export const cancelRunningChildren = (v: { children: readonly OperationRow[] }, ctx: KindContext): void => {
  for (const child of v.children) if (child.state === 'running') ctx.cancelQuietly(child);
};

/** The refusal of a kind that can never be cancelled. */
export const neverCancelled =
  (what: string, hint: string) =>
  (op: OperationRow): CancelRefusal => ({ message: `operation ${op.id} is ${what}`, hint: hint.replaceAll('ID', op.id) });

/** The step written when an operation's view cannot be built: failed, what it worked on was removed meanwhile. */
export const failedAsRemoved =
  (reason: string, error: string, epoch?: number) =>
  (): Omit<OperationStep, 'rule'> => ({ to: 'done', state: 'failed', reason, error, ...(epoch === undefined ? {} : { epoch }) });

/**
 * Records a new running operation of `kind` with a fresh id (returned); another operation already running on its
 * store (or a drain on its machine) becomes the ConflictError `busy` makes of it.
 */
export function createOperation(ctx: KindContext, kind: AnyKind, input: Omit<NewOperation, 'id' | 'kind'>, busy: (running: OperationRow) => ConflictError): string {
  const id = `${kind.idPrefix}-${randomUUID().slice(0, 8)}`;
  try {
    ctx.storage.operations.create({ id, kind: kind.name, ...input });
  } catch (err) {
    if (err instanceof OperationConflict) throw busy(err.running);
    throw err;
  }
  return id;
}
