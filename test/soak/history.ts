// The history of a soak run: what every client asked and what it was answered, and what the nemesis did, as JSON
// lines. An operation is written twice — when it is invoked and when it completes — so one that never completed (a
// client killed, a hung call) is still in the history, as "did not end", instead of silently missing. A client or
// runner killed mid-write leaves a torn last line: parsing drops it and says so; a bad line anywhere else is an error
// that names the file and line.
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';

export const OP_KINDS = ['deliver', 'append', 'create-folder', 'delete-folder', 'set-flags', 'clear-flags', 'expunge'] as const;
export type OpKind = (typeof OP_KINDS)[number];
/** 'unknown': timed out or the connection broke — it may or may not have happened. */
export type Outcome = 'ok' | 'fail' | 'unknown';

export interface Operation {
  /** Unique within its client. */
  id: string;
  client: string;
  kind: OpKind;
  store: string;
  user: string;
  /** As the user sees it (INBOX, INBOX/Projects); deliveries go to INBOX. */
  folder?: string;
  messageId?: string;
  /** bodyHash() of the message as sent (deliver, append). */
  bodyHash?: string;
  /** append: the flags it was stored with; set-flags/clear-flags: the flags added or removed. */
  flags?: string[];
  /** ms on the run's clock (monotonicMs), when it was invoked and when the answer came. */
  start: number;
  end?: number;
  /** Missing with `end`: the operation never completed. */
  outcome?: Outcome;
  detail?: string;
}

export interface NemesisEvent {
  at: number;
  kind: string;
  target: string;
  phase: 'start' | 'end';
  /** The schedule step it belongs to. */
  step?: number;
  detail?: string;
}

export interface History {
  operations: Operation[];
  nemesis: NemesisEvent[];
  /** Torn last lines dropped, per source. */
  torn: { source: string; line: number; text: string }[];
}

/** The lines as written. */
export type HistoryLine =
  | ({ type: 'invoke' } & Omit<Operation, 'end' | 'outcome' | 'detail'>)
  | { type: 'complete'; id: string; client: string; end: number; outcome: Outcome; detail?: string }
  | ({ type: 'nemesis' } & NemesisEvent);

export class HistoryLineError extends Error {
  override readonly name = 'HistoryLineError';
  constructor(
    readonly source: string,
    readonly line: number,
    why: string,
    text: string,
  ) {
    super(`${source}:${line}: ${why}: ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`);
  }
}

/**
 * ms on CLOCK_MONOTONIC, which every process of the host shares: the run's clock. Not Date.now(): the nemesis steps
 * the wall clock, and a history ordered by it would put answers before questions.
 */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optStr = (v: unknown) => v === undefined || typeof v === 'string';

/** Why a parsed object is not a history line (undefined: it is). */
function invalid(l: Record<string, unknown>): string | undefined {
  if (l.type === 'invoke') {
    if (!isStr(l.id) || !isStr(l.client)) return 'an invoke needs id and client';
    if (!(OP_KINDS as readonly unknown[]).includes(l.kind)) return `unknown operation kind ${String(l.kind)}`;
    if (!isStr(l.store) || !isStr(l.user) || !isNum(l.start)) return 'an invoke needs store, user and start';
    if (!optStr(l.folder) || !optStr(l.messageId) || !optStr(l.bodyHash)) return 'folder, messageId and bodyHash are strings';
    if (l.flags !== undefined && !(Array.isArray(l.flags) && l.flags.every(isStr))) return 'flags are a list of strings';
    if ((l.kind === 'deliver' || l.kind === 'append' || l.kind === 'expunge' || l.kind === 'set-flags' || l.kind === 'clear-flags') && !isStr(l.messageId)) return `${l.kind} needs a messageId`;
    if (l.kind !== 'deliver' && !isStr(l.folder)) return `${l.kind} needs a folder`;
    return undefined;
  }
  if (l.type === 'complete') {
    if (!isStr(l.id) || !isStr(l.client) || !isNum(l.end)) return 'a complete needs id, client and end';
    if (l.outcome !== 'ok' && l.outcome !== 'fail' && l.outcome !== 'unknown') return `unknown outcome ${String(l.outcome)}`;
    return optStr(l.detail) ? undefined : 'detail is a string';
  }
  if (l.type === 'nemesis') {
    if (!isNum(l.at) || !isStr(l.kind) || !isStr(l.target)) return 'a nemesis event needs at, kind and target';
    return l.phase === 'start' || l.phase === 'end' ? undefined : `unknown phase ${String(l.phase)}`;
  }
  return `unknown line type ${String(l.type)}`;
}

/** Adds one source's lines to a history (several clients' files make one history). */
export function parseHistoryInto(history: History, text: string, source: string): History {
  const ops = new Map(history.operations.map((o) => [`${o.client}\0${o.id}`, o]));
  const lines = text.split('\n');
  const last = text.endsWith('\n') ? -1 : lines.length - 1; // a last line without its newline may be torn
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (!raw.trim()) return;
    let l: HistoryLine;
    try {
      l = JSON.parse(raw) as HistoryLine;
    } catch {
      if (i === last) return void history.torn.push({ source, line: n, text: raw });
      throw new HistoryLineError(source, n, 'not JSON', raw);
    }
    const why = typeof l === 'object' && l !== null ? invalid(l as unknown as Record<string, unknown>) : 'not an object';
    if (why) throw new HistoryLineError(source, n, why, raw);
    if (l.type === 'nemesis') {
      const { type: _, ...event } = l;
      history.nemesis.push(event);
    } else if (l.type === 'invoke') {
      const key = `${l.client}\0${l.id}`;
      if (ops.has(key)) throw new HistoryLineError(source, n, `operation ${l.client}/${l.id} invoked twice`, raw);
      const { type: _, ...op } = l;
      ops.set(key, op);
      history.operations.push(op);
    } else {
      const op = ops.get(`${l.client}\0${l.id}`);
      if (!op) throw new HistoryLineError(source, n, `completes ${l.client}/${l.id}, which was never invoked`, raw);
      if (op.outcome) throw new HistoryLineError(source, n, `operation ${l.client}/${l.id} completed twice`, raw);
      if (l.end < op.start) throw new HistoryLineError(source, n, `ends before it started (${op.start})`, raw);
      Object.assign(op, { end: l.end, outcome: l.outcome }, l.detail !== undefined ? { detail: l.detail } : {});
    }
  });
  history.operations.sort((a, b) => a.start - b.start);
  history.nemesis.sort((a, b) => a.at - b.at);
  return history;
}

export const emptyHistory = (): History => ({ operations: [], nemesis: [], torn: [] });

export const parseHistory = (text: string, source = 'history'): History => parseHistoryInto(emptyHistory(), text, source);

export function readHistory(paths: readonly string[]): History {
  const history = emptyHistory();
  for (const path of paths) parseHistoryInto(history, readFileSync(path, 'utf8'), path);
  return history;
}

/** What a client records as a message's bodyHash: the same function the final state's reader uses. */
export { bodySha256 as bodyHash } from '../support/mail-compare.js';

/**
 * Appends a client's history, one write(2) per line on an O_APPEND descriptor (so lines of several writers to one
 * file do not interleave), synchronously (a line is on its way to the file before the call that produced it goes on).
 */
export class HistoryWriter {
  private readonly fd: number;
  private seq = 0;

  constructor(
    path: string,
    private readonly client: string,
    private readonly now: () => number = monotonicMs,
  ) {
    this.fd = openSync(path, 'a');
  }

  private write(line: HistoryLine): void {
    writeSync(this.fd, `${JSON.stringify(line)}\n`);
  }

  /** Records the invocation; returns the id to complete it with. */
  invoke(op: Omit<Operation, 'id' | 'client' | 'start' | 'end' | 'outcome' | 'detail'>): string {
    const id = `${this.client}-${++this.seq}`;
    this.write({ type: 'invoke', id, client: this.client, start: this.now(), ...op });
    return id;
  }

  complete(id: string, outcome: Outcome, detail?: string): void {
    this.write({ type: 'complete', id, client: this.client, end: this.now(), outcome, ...(detail !== undefined ? { detail } : {}) });
  }

  nemesis(event: Omit<NemesisEvent, 'at'>): void {
    this.write({ type: 'nemesis', at: this.now(), ...event });
  }

  close(): void {
    closeSync(this.fd);
  }
}
