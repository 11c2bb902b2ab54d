// Pure: how every operation's rule table is read, as pg_auto_failover's fsm.c reads its transition table — the table
// IS the dispatch. A row says from which step to which, why (`reason`), when (`when`: the sentence that makes it fire,
// or undefined) and which action runs on entering the new step (`action`, a name the kind maps to a function). The
// first row leaving the operation's current step whose condition holds fires; its sentence goes into the event.
// When none fires, the operation waits, and its kind says why in a sentence (as Patroni answers every loop).
import type { OperationRow, OperationState } from '../../db/rows.js';

export interface Rule<V, A extends string = string, S extends string = string> {
  /** The step the row leaves; '*' applies at every step (before the rows of that step). */
  from: S | '*';
  to: S;
  /** Set on rows that end the operation (a function when the end depends on the operation: a rollback's). */
  state?: OperationState | ((v: V) => OperationState);
  /** A `state` function in words (docs). */
  stateDoc?: string;
  reason: string;
  /** The condition in words, for docs/ARCHITECTURE.md (the generated tables). */
  doc: string;
  /** Returns the detail that makes the row fire (used in the event), or undefined. */
  when: (v: V) => string | undefined;
  action: A;
  /** Rows that end badly or roll back: the detail is the operation's error. */
  failure?: boolean;
}

export interface OperationSnapshot {
  now: number;
  op: OperationRow;
}

export interface Fired<R> {
  rule: R;
  detail: string;
}

/** The first row that `applies` and whose condition holds, with its sentence. */
export function firstMatch<V, R extends Pick<Rule<V>, 'when'>>(rules: readonly R[], v: V, applies: (rule: R) => boolean = () => true): Fired<R> | undefined {
  for (const rule of rules) {
    if (!applies(rule)) continue;
    const detail = rule.when(v);
    if (detail !== undefined) return { rule, detail };
  }
  return undefined;
}

/** The first row leaving the operation's step whose condition holds, with its sentence; undefined: it waits. */
export function decide<V extends OperationSnapshot, R extends Rule<V, string>>(rules: readonly R[], v: V): Fired<R> | undefined {
  return firstMatch(rules, v, (rule) => rule.from === '*' || rule.from === v.op.step);
}

/**
 * A row of a level-triggered check (the watches: what to do about each down machine's stores, each returning old
 * master): no steps, read as the operation rows are — the first whose condition holds names the action.
 */
export type CheckRule<V, A extends string> = Pick<Rule<V, A>, 'when' | 'action' | 'doc'> & { name: string };

/** The rule's name in events and logs: `from -> to` (a '*' row is named after the step it left). */
export const ruleName = (rule: Rule<never>, step: string): string => `${rule.from === '*' ? step : rule.from} -> ${rule.to}`;

/** The state an operation is in after `rule` fired. */
export function stateAfter<V>(rule: Rule<V>, v: V): OperationState {
  return typeof rule.state === 'function' ? rule.state(v) : (rule.state ?? 'running');
}

/**
 * The action of the row that enters `step`, which a resumed operation runs again (a coordinator that died after
 * recording a step may not have run its action). Rows that loop on a step re-run their action by themselves.
 */
export function entryAction<A extends string>(rules: readonly Rule<never, A>[], step: string): A | undefined {
  return rules.find((r) => r.to === step && r.from !== r.to)?.action;
}

/** How long the operation has been at its step. */
export const stepAge = (v: OperationSnapshot): number => v.now - Date.parse(v.op.stepSince || v.op.updatedAt);
/** How long since the operation started. */
export const age = (v: OperationSnapshot): number => v.now - Date.parse(v.op.createdAt);
/** A time of day for a sentence (UTC, as the events are). */
export const clock = (iso: string): string => (iso ? new Date(iso).toISOString().slice(11, 19) : '?');
/**
 * `until HH:MM:SS`: when a wait ends, as a time, not as seconds left — a waiting sentence is stored when it
 * changes, and a countdown would change it every second.
 */
export const until = (iso: string, ms: number): string => `until ${clock(new Date(Date.parse(iso) + ms).toISOString())}`;
