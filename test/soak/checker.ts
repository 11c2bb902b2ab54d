// The soak's checker: is the final state of every store one that the history allows? Each message is judged by the
// operations on it in real-time order — an operation "definitely follows" another when it started after the other
// ended; when neither follows, either order may have happened, and an 'unknown' (or never ended) operation may or
// may not have happened at all. So an acknowledged message must be there unless a removal could have come after it,
// and a removed one must be gone unless something could have brought it back. Every violation carries the shortest
// excerpt that shows it: the operations on that message or folder and the nemesis events overlapping them.
import type { DualMaster } from '../cluster/master-watch.js';
import type { MessageFacts, Snapshot } from '../support/mail-compare.js';
import { type History, type NemesisEvent, OP_KINDS, type OpKind, type Operation, type Outcome } from './history.js';

export interface StoreState {
  master: Snapshot;
  replica: Snapshot;
}
/** Per store, both sides as test/support/mail-compare.ts reads them, after every recovery. */
export type FinalState = Record<string, StoreState>;

export const RULES = ['lost', 'duplicate', 'phantom', 'resurrected', 'flags', 'damaged', 'replica', 'unended'] as const;
export type Rule = (typeof RULES)[number];

export interface ExcerptEntry {
  at: number;
  op?: Operation;
  nemesis?: NemesisEvent;
}

export interface Violation {
  rule: Rule;
  store: string;
  user: string;
  folder?: string;
  messageId?: string;
  what: string;
  excerpt: ExcerptEntry[];
  /** An undone change a disaster failover put at risk: the at-risk record that names its mailbox (not a failure). */
  explainedBy?: string;
}

/**
 * A disaster failover's at-risk record as the checker reads it: the store, when the failover happened (on the
 * history's clock) and the mailboxes (Cyrus internal names) whose changes the new master may lack.
 */
export interface AtRiskRecord {
  id: number;
  store: string;
  at: number;
  /** From when changes may not have replicated (see atRiskFrom). */
  from: number;
  mailboxes: string[];
  state: string;
}

/** An at-risk record the runner found neither recovered nor explained (filled by the runner from `store at-risk`). */
export interface AtRiskUnexplained {
  id: number;
  store: string;
  slot: string;
  machine: string;
  state: string;
  why: string;
}

export interface CheckSummary {
  operations: Partial<Record<OpKind, Partial<Record<Outcome | 'unended', number>>>>;
  violations: Partial<Record<Rule, number>>;
  messages: number;
  folders: number;
  /** Users found in the final state that no operation touched: left to other checks (the load generator's). */
  usersIgnored: string[];
  /** Violations explained by an at-risk record (changes a disaster failover undid, by design): not counted above. */
  explained?: number;
}

export interface CheckReport {
  violations: Violation[];
  summary: CheckSummary;
  /** From the split-brain watch (master-watch.ts): the runner fills it. */
  twoMasterMoments: DualMaster[];
  /** From the coordinator's at-risk records: the runner fills it. */
  atRiskUnexplained: AtRiskUnexplained[];
}

export interface CheckOptions {
  /** Folders that existed before the run, per `store/user` (INBOX always counts as existing). */
  initialFolders?: Record<string, string[]>;
  /** Message-IDs not written by the soak's clients (the load generator's): judged by their own check. */
  foreign?: (messageId: string) => boolean;
  /**
   * The run's at-risk records. Recovery gives back what only the old master had (messages, folders) but never deletes
   * or overwrites on the new master: an EXPUNGE, folder DELETE or flag change acknowledged by the old master before
   * the failover and not replicated is undone, by design. Such a violation is explained when a record of its store
   * names its mailbox and the change was made before that failover; a lost message is never explained.
   */
  atRisk?: readonly AtRiskRecord[];
}

const DELETED = '\\Deleted';
const endOf = (o: Operation) => o.end ?? Infinity;
const done = (o: Operation) => o.outcome === 'ok';
/** It may have taken effect: acknowledged, unknown, or never ended. */
const maybe = (o: Operation) => o.outcome !== 'fail';
/** b started after a ended: b certainly came after a. */
const follows = (b: Operation, a: Operation) => b.start > endOf(a);
const folderOf = (o: Operation) => o.folder ?? 'INBOX';
const key = (...parts: string[]) => parts.join('\0');
const isCreation = (o: Operation) => o.kind === 'deliver' || o.kind === 'append';

/** Map.groupBy, which Node 20 (the oldest this runs on) lacks. */
function groupBy<T>(items: readonly T[], by: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const k = by(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

function describeOp(o: Operation): string {
  const what = o.kind === 'create-folder' || o.kind === 'delete-folder' ? folderOf(o) : `${o.messageId}${o.kind === 'deliver' || o.kind === 'append' ? '' : ` in ${folderOf(o)}`}`;
  const flags = o.flags?.length ? ` [${o.flags.join(' ')}]` : '';
  return `${o.client}/${o.id} ${o.kind} ${o.store}/${o.user} ${what}${flags}`;
}

/** The operations given, plus every nemesis step that overlaps their time, in time order. */
export function excerptOf(ops: readonly Operation[], history: History): ExcerptEntry[] {
  if (!ops.length) return [];
  const from = Math.min(...ops.map((o) => o.start));
  const last = Math.max(...history.operations.map((o) => o.end ?? o.start), ...history.nemesis.map((n) => n.at));
  const to = Math.max(...ops.map((o) => Math.min(endOf(o), last)));
  // pair each start with its end (by step, else kind and target); a step never ended lasts to the history's end
  const open = new Map<string, NemesisEvent>();
  const picked = new Set<NemesisEvent>();
  const take = (start: NemesisEvent | undefined, end: NemesisEvent | undefined) => {
    const a = start?.at ?? -Infinity;
    const b = end?.at ?? Infinity;
    if (a <= to && b >= from) for (const e of [start, end]) if (e) picked.add(e);
  };
  for (const e of history.nemesis) {
    const k = e.step !== undefined ? `#${e.step}` : key(e.kind, e.target);
    if (e.phase === 'start') open.set(k, e);
    else {
      take(open.get(k), e);
      open.delete(k);
    }
  }
  for (const e of open.values()) take(e, undefined);
  const entries: ExcerptEntry[] = [...ops.map((op) => ({ at: op.start, op })), ...[...picked].map((nemesis) => ({ at: nemesis.at, nemesis }))];
  return entries.sort((a, b) => a.at - b.at);
}

const ms = (t: number, origin: number) => `+${((t - origin) / 1000).toFixed(3)} s`;

export function renderExcerpt(excerpt: readonly ExcerptEntry[], origin = 0): string[] {
  return excerpt.map((e) => {
    if (e.nemesis) return `${ms(e.at, origin)}  nemesis ${e.nemesis.kind} ${e.nemesis.target} ${e.nemesis.phase}${e.nemesis.step !== undefined ? ` (#${e.nemesis.step})` : ''}${e.nemesis.detail ? `: ${e.nemesis.detail}` : ''}`;
    const o = e.op!;
    const answer = o.end === undefined ? 'never ended' : `${o.outcome} at ${ms(o.end, origin)}${o.detail ? ` (${o.detail})` : ''}`;
    return `${ms(e.at, origin)}  ${describeOp(o)} → ${answer}`;
  });
}

/** Every difference between master and replica of one store, one violation each. */
function replicaViolations(store: string, state: StoreState, opsOf: (user: string, folder: string, messageId?: string) => Operation[], history: History): Violation[] {
  const out: Violation[] = [];
  const v = (user: string, what: string, folder?: string, messageId?: string): Violation => ({
    rule: 'replica', store, user, ...(folder !== undefined ? { folder } : {}), ...(messageId !== undefined ? { messageId } : {}), what,
    excerpt: excerptOf(folder === undefined ? [] : opsOf(user, folder, messageId), history),
  });
  const side = (has: boolean) => (has ? 'master' : 'replica');
  for (const user of [...new Set([...Object.keys(state.master), ...Object.keys(state.replica)])].sort()) {
    const a = state.master[user];
    const b = state.replica[user];
    if (!a || !b) {
      out.push(v(user, `user ${user} only on the ${side(!!a)}`));
      continue;
    }
    for (const folder of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
      const ma = a[folder];
      const mb = b[folder];
      if (!ma || !mb) {
        out.push(v(user, `${store}/${user}: folder ${folder} only on the ${side(!!ma)}`, folder));
        continue;
      }
      const facts = (m: MessageFacts) => `[${m.flags.join(' ')}] ${m.sha256.slice(0, 12)}`;
      const byId = (list: MessageFacts[]) => groupBy(list, (m) => m.messageId);
      const ga = byId(ma);
      const gb = byId(mb);
      for (const id of [...new Set([...ga.keys(), ...gb.keys()])].sort()) {
        const fa = (ga.get(id) ?? []).map(facts).sort();
        const fb = (gb.get(id) ?? []).map(facts).sort();
        if (JSON.stringify(fa) !== JSON.stringify(fb)) out.push(v(user, `${store}/${user} ${folder} ${id}: on the master ${fa.join(', ') || 'absent'}; on the replica ${fb.join(', ') || 'absent'}`, folder, id));
      }
    }
  }
  return out;
}

/** The value a flag must have, or undefined when the history allows either. */
function expectedFlag(flag: string, ops: readonly Operation[]): boolean | undefined {
  const valueOf = (o: Operation) => (o.kind === 'clear-flags' ? false : (o.flags ?? []).includes(flag));
  const touching = ops.filter((o) => maybe(o) && (isCreation(o) || (o.flags ?? []).includes(flag)));
  const acked = touching.filter(done);
  if (!acked.length) return touching.length ? undefined : false;
  // the acknowledged changes no other acknowledged change certainly followed: one of them was applied last
  const lastOnes = acked.filter((o) => !acked.some((p) => p !== o && follows(p, o)));
  const values = new Set(lastOnes.map(valueOf));
  if (values.size > 1) return undefined;
  const value = values.values().next().value!;
  const earliest = Math.min(...lastOnes.map((o) => o.start));
  // an unknown change that may have landed after them, to the other value, leaves either
  if (touching.some((o) => !done(o) && endOf(o) > earliest && valueOf(o) !== value)) return undefined;
  return value;
}

interface Judged {
  violations: Violation[];
  messages: number;
  folders: number;
}

/** One user's folders and messages on one store's master, against the history. */
function judgeUser(store: string, user: string, master: Record<string, MessageFacts[]>, ops: readonly Operation[], options: CheckOptions, history: History, attemptedFor: Map<string, Operation[]>): Judged {
  const out: Violation[] = [];
  const initial = new Set(['INBOX', ...(options.initialFolders?.[`${store}/${user}`] ?? [])]);
  const folderOps = (folder: string) => ops.filter((o) => (o.kind === 'create-folder' || o.kind === 'delete-folder') && folderOf(o) === folder);
  const folders = new Set([...initial, ...Object.keys(master), ...ops.map(folderOf)]);
  let messages = 0;
  for (const folder of [...folders].sort()) {
    const fops = folderOps(folder);
    const creates = fops.filter((o) => o.kind === 'create-folder');
    const deletes = fops.filter((o) => o.kind === 'delete-folder');
    const present = folder in master;
    const at = { store, user, folder };
    const existedAlways = initial.has(folder);
    const mustExist = (existedAlways && !deletes.some(maybe)) || creates.some((c) => done(c) && !deletes.some((d) => maybe(d) && endOf(d) > c.start));
    const mayExist = (existedAlways && !deletes.some((d) => done(d))) || creates.some((c) => maybe(c) && !deletes.some((d) => done(d) && follows(d, c)));
    if (!present && mustExist) out.push({ rule: 'lost', ...at, what: `folder ${folder} of ${store}/${user} is missing, though ${existedAlways ? 'it existed from the start' : 'its creation was acknowledged'} and no delete could have followed`, excerpt: excerptOf(fops, history) });
    if (present && !mayExist) {
      const never = !existedAlways && !creates.some(maybe);
      out.push({ rule: never ? 'phantom' : 'resurrected', ...at, what: never ? `folder ${folder} of ${store}/${user} is there, but was never created` : `folder ${folder} of ${store}/${user} is back after an acknowledged delete that nothing followed`, excerpt: excerptOf(fops, history) });
    }
    const found = groupBy((master[folder] ?? []).filter((m) => !options.foreign?.(m.messageId)), (m) => m.messageId);
    const mops = ops.filter((o) => folderOf(o) === folder && o.messageId !== undefined);
    const ids = new Set([...found.keys(), ...mops.filter(isCreation).map((o) => o.messageId!)]);
    for (const id of [...ids].sort()) {
      messages++;
      const mine = mops.filter((o) => o.messageId === id);
      const shown = [...mine, ...fops].sort((a, b) => a.start - b.start);
      const copies = found.get(id) ?? [];
      const v = (rule: Rule, what: string): Violation => ({ rule, ...at, messageId: id, what, excerpt: excerptOf(shown, history) });
      const creations = mine.filter(isCreation);
      // removals: an expunge of the message, or a delete of its folder
      const removals = [...mine.filter((o) => o.kind === 'expunge'), ...deletes];
      const min = creations.filter((c) => done(c) && !removals.some((r) => maybe(r) && endOf(r) > c.start)).length;
      const max = creations.filter((c) => maybe(c) && !removals.some((r) => done(r) && follows(r, c))).length;
      const possible = creations.filter(maybe).length;
      const where = `${store}/${user} ${folder}`;
      if (copies.length < min) out.push(v('lost', `${id}: acknowledged in ${where} but ${copies.length ? `only ${copies.length} of ${min} copies are there` : 'it is not there'}, and no removal could have followed`));
      else if (copies.length > max) {
        if (possible === 0) {
          const elsewhere = (attemptedFor.get(id) ?? []).filter((o) => o.store !== store || o.user !== user || folderOf(o) !== folder);
          const hint = creations.length ? 'every attempt to store it failed' : elsewhere.length ? `it was sent to ${elsewhere.map((o) => `${o.store}/${o.user} ${folderOf(o)}`).join(', ')}` : 'it was never sent';
          out.push(v('phantom', `${id} is in ${where}, but ${hint}`));
        } else if (copies.length > possible) out.push(v('duplicate', `${id}: ${copies.length} copies in ${where}, from ${possible} attempt(s) that may have stored one`));
        else out.push(v('resurrected', `${id} is in ${where} after an acknowledged ${removals.some((r) => r.kind === 'expunge' && done(r)) ? 'EXPUNGE' : 'folder delete'} that nothing followed`));
      }
      if (!copies.length || possible === 0) continue; // a phantom has no flags or body to expect
      const hashes = new Set(creations.map((c) => c.bodyHash).filter((h) => h !== undefined));
      for (const c of copies) if (hashes.size && c.bodySha256 !== undefined && !hashes.has(c.bodySha256)) out.push(v('damaged', `${id} in ${where}: body hash ${c.bodySha256.slice(0, 12)} is none that was sent (${[...hashes].map((h) => h.slice(0, 12)).join(', ')})`));
      // \Deleted is the first half of an EXPUNGE: after one that failed or is unknown it may stay set
      const expunged = mine.some((o) => o.kind === 'expunge');
      const flags = new Set([...mine.flatMap((o) => o.flags ?? []), ...copies.flatMap((c) => c.flags)]);
      for (const flag of [...flags].sort()) {
        if (flag === DELETED && expunged) continue;
        const want = expectedFlag(flag, mine);
        if (want === undefined) continue;
        const wrong = copies.filter((c) => c.flags.includes(flag) !== want);
        if (wrong.length) out.push(v('flags', `${id} in ${where}: ${flag} is ${want ? 'not set' : 'set'}, but the last acknowledged change ${want ? 'set' : 'cleared'} it${want ? '' : ' (or never set it)'} and no unknown change came after`));
      }
    }
  }
  return { violations: out, messages, folders: folders.size };
}

/** Judges the final state against the history. The runner adds two-master moments and at-risk records. */
export function check(history: History, final: FinalState, options: CheckOptions = {}): CheckReport {
  const violations: Violation[] = [];
  const summary: CheckSummary = { operations: {}, violations: {}, messages: 0, folders: 0, usersIgnored: [] };
  for (const o of history.operations) {
    const by = (summary.operations[o.kind] ??= {});
    const outcome = o.end === undefined ? 'unended' : o.outcome!;
    by[outcome] = (by[outcome] ?? 0) + 1;
    if (o.end === undefined) violations.push({ rule: 'unended', store: o.store, user: o.user, ...(o.folder !== undefined ? { folder: o.folder } : {}), ...(o.messageId !== undefined ? { messageId: o.messageId } : {}), what: `${describeOp(o)} did not end`, excerpt: excerptOf([o], history) });
  }
  const byUser = groupBy(history.operations, (o) => key(o.store, o.user));
  const attemptedFor = groupBy(history.operations.filter((o) => isCreation(o)), (o) => o.messageId!);
  const stores = [...new Set([...Object.keys(final), ...history.operations.map((o) => o.store)])].sort();
  for (const store of stores) {
    const state = final[store] ?? { master: {}, replica: {} };
    const users = [...new Set([...Object.keys(state.master), ...history.operations.filter((o) => o.store === store).map((o) => o.user)])].sort();
    for (const user of users) {
      const ops = byUser.get(key(store, user)) ?? [];
      if (!ops.length) {
        summary.usersIgnored.push(`${store}/${user}`);
        continue;
      }
      const judged = judgeUser(store, user, state.master[user] ?? {}, ops, options, history, attemptedFor);
      violations.push(...judged.violations);
      summary.messages += judged.messages;
      summary.folders += judged.folders;
    }
    const opsOf = (user: string, folder: string, messageId?: string) => (byUser.get(key(store, user)) ?? []).filter((o) => folderOf(o) === folder && (messageId === undefined || o.messageId === messageId || o.kind === 'delete-folder' || o.kind === 'create-folder'));
    violations.push(...replicaViolations(store, state, opsOf, history));
  }
  for (const v of violations) {
    const why = explanation(v, options.atRisk ?? []);
    if (why) v.explainedBy = why;
    else summary.violations[v.rule] = (summary.violations[v.rule] ?? 0) + 1;
  }
  summary.explained = violations.filter((v) => v.explainedBy).length;
  return { violations, summary, twoMasterMoments: [], atRiskUnexplained: [] };
}

/** Cyrus's internal name of a user's folder, as sync logs and at-risk records name it (unixhierarchysep: / → .). */
export function internalMailbox(user: string, folder: string): string {
  return folder === 'INBOX' ? `user.${user}` : `user.${user}.${folder.replace(/^INBOX\//, '').replaceAll('.', '^').replaceAll('/', '.')}`;
}

const UNDOABLE: readonly OpKind[] = ['expunge', 'delete-folder', 'set-flags', 'clear-flags'];

/**
 * A record's window starts at the old master's oldest unreplicated change as the runner reads it: the report's time
 * (the coordinator's, when it stored the report) less the change's age (the agent's, when it read its sync logs). The
 * report's way between the two — a coalescing delay, the session, the coordinator's writer — makes that up to
 * hundreds of ms later than the change itself on a busy host, after the client already had its answer (seed 12914: a
 * DELETE answered 0.7 s before a crash fell just outside). The window is taken that much wider.
 */
const REPORT_SLACK_MS = 1000;

/** What the old master last reported about its backlog, as `slotctl store at-risk --json` shows it. */
export interface ReportedBacklog {
  /** '' when the old master never reported (the contract's default for an unset string). */
  reportedAt: string;
  files: number;
  oldestChangeAgeMs: number;
  /** Set when a full partition kept changes out of the sync log from then on (they are in no file). */
  unloggedSince?: string;
}

/**
 * From when an at-risk record's changes may not have replicated, on the run's clock (`toRunClock` maps a wall-clock
 * time onto it): the oldest change in a sync log the old master last reported, or its report time when it had none —
 * and no later than the moment the slot could no longer log changes (`unloggedSince`), which no sync log file counts
 * (seed 12914: a \Seen set 23 s before a report of 0 files, while the meta partition was full, fell outside).
 */
export function atRiskFrom(r: ReportedBacklog, toRunClock: (wall: string) => number): number {
  if (!r.reportedAt) return -Infinity;
  const logged = toRunClock(r.reportedAt) - (r.files ? r.oldestChangeAgeMs : 0);
  return r.unloggedSince ? Math.min(logged, toRunClock(r.unloggedSince)) : logged;
}

/** The at-risk record that explains an undone change, if any (see CheckOptions.atRisk). */
function explanation(v: Violation, records: readonly AtRiskRecord[]): string | undefined {
  if (v.rule !== 'resurrected' && v.rule !== 'flags') return undefined;
  const name = internalMailbox(v.user, v.folder ?? 'INBOX');
  const ops = v.excerpt.flatMap((e) => (e.op && e.op.outcome === 'ok' ? [e.op] : []));
  for (const r of records) {
    if (r.store !== v.store || !r.mailboxes.some((m) => m === name || m.startsWith(`DELETED.${name}.`))) continue;
    // answered by the old master inside the window its record covers: from its oldest unreplicated change to the failover
    const atRisk = (o: Operation) => o.start < r.at && endOf(o) >= r.from - REPORT_SLACK_MS;
    // undone: a removal or flag change that may not have replicated; given back: a message only the old master had,
    // which recovery brings back even where the new master removed its folder meanwhile (it never deletes)
    if (ops.some((o) => UNDOABLE.includes(o.kind) && atRisk(o))) return `at-risk record #${r.id} (${r.state}): its failover names ${name}, changed on the old master before it and not replicated`;
    if (v.rule === 'resurrected' && ops.some((o) => isCreation(o) && atRisk(o))) return `at-risk record #${r.id} (${r.state}): its failover names ${name}; the message was stored on the old master only and recovery gave it back`;
  }
  return undefined;
}

/** The violations that fail a run: every one not explained by an at-risk record. */
export const failures = (report: CheckReport): Violation[] => report.violations.filter((v) => !v.explainedBy);

/** The run passed: no unexplained violation, never two masters, every at-risk record recovered or explained. */
export const passed = (report: CheckReport): boolean => !failures(report).length && !report.twoMasterMoments.length && !report.atRiskUnexplained.length;

/** The report as a person reads it after a failed run: counts, then each violation with its excerpt. */
export function renderReport(report: CheckReport, origin = 0): string[] {
  const ops = OP_KINDS.filter((k) => report.summary.operations[k]).map((k) => `${k} ${Object.entries(report.summary.operations[k]!).map(([o, n]) => `${o} ${n}`).join(' ')}`);
  const explained = report.violations.filter((v) => v.explainedBy);
  const lines = [`${passed(report) ? 'PASSED' : 'FAILED'}: ${failures(report).length} violation(s), ${report.twoMasterMoments.length} two-master moment(s), ${report.atRiskUnexplained.length} at-risk record(s) unexplained`, `operations: ${ops.join('; ') || 'none'}`, `checked ${report.summary.messages} message(s) in ${report.summary.folders} folder(s); ${explained.length} change(s) undone by a disaster failover, each named by its at-risk record`];
  for (const v of failures(report)) lines.push(`[${v.rule}] ${v.what}`, ...renderExcerpt(v.excerpt, origin).map((l) => `    ${l}`));
  for (const v of explained) lines.push(`[${v.rule}, explained] ${v.what}: ${v.explainedBy}`);
  for (const d of report.twoMasterMoments) lines.push(`[two masters] ${d.ip} for ${d.ms} ms: ${d.machines.join(', ')}`);
  for (const r of report.atRiskUnexplained) lines.push(`[at risk] #${r.id} ${r.store} ${r.slot} on ${r.machine} (${r.state}): ${r.why}`);
  return lines;
}
