// Comparing a new replica slot with its master, shared by the kinds that fill one with a full copy (rereplicate.ts,
// move-replica.ts): the master is summarized first (mbexamine of every mailbox), the new slot 1.5 s later, and the
// new slot passes when it holds every mailbox of the master's summary as new or newer; while it does not, both are
// summarized again every 2 s, up to the kind's bound. The rows, their actions and why they wait, for either kind's
// table (`compareRows` at its verify step, `compareAction` for the actions the rows name, `compareWaiting`).
import { ALL_MAILBOXES } from '@slotctl/shared';
import type { MachineRow, MailboxCheckRow, MailboxSummaryRow, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import { seedSlotProblem } from '../seed-limits.js';
import type { KindContext } from '../framework/kind.js';
import { clock, stepAge, until, type Rule } from '../framework/rule.js';

export const COMPARE = { recheckMs: 2000, lagMs: 1500 };

export type CompareAction = 'request-check' | 'note-master' | 'request-target-check';

/** What a comparison reads of its kind's view. */
export interface CompareView {
  now: number;
  op: OperationRow;
  params: { master: string; masterMachine: string; target: string; targetMachine: string; verifyTimeoutMs: number };
  master: SlotRow | undefined;
  target: SlotRow | undefined;
  /** The check id of the current comparison ('' before the first). */
  checkId: string;
}

/** Both summaries of the current comparison, once both arrived. */
export function checks(v: CompareView): { master: MailboxCheckRow; target: MailboxCheckRow } | undefined {
  const m = v.master?.results.check;
  const t = v.target?.results.check;
  if (!v.checkId || m?.op !== v.checkId || t?.op !== v.checkId) return undefined;
  return { master: m, target: t };
}

/**
 * Mailboxes of the master's summary that the new slot had not caught up with when it was summarized (1.5 s or more
 * later): missing, another uniqueid or UIDVALIDITY, or an older last UID or highest modseq. Under a steady load the
 * two never hold the same count at the same instant (measured: 36 comparisons in 72 s before one agreed), but a
 * replica whose mailbox is at or past the master's modseq of a moment before holds everything the master held then
 * — and what came after flows through the replication channel. Delayed-deleted mailboxes are not compared.
 */
export function notCaughtUp(master: readonly MailboxSummaryRow[], target: readonly MailboxSummaryRow[]): string[] {
  const byName = new Map(target.map((m) => [m.name, m]));
  const out: string[] = [];
  for (const m of master) {
    if (!m.exists || m.name.startsWith('DELETED.')) continue;
    const r = byName.get(m.name);
    if (!r?.exists) out.push(`${m.name}: missing on the new slot`);
    else if (r.uniqueid !== m.uniqueid) out.push(`${m.name}: uniqueid ${m.uniqueid} on the master, ${r.uniqueid} on the new slot`);
    else if (r.uidvalidity !== m.uidvalidity) out.push(`${m.name}: UIDVALIDITY ${m.uidvalidity} on the master, ${r.uidvalidity} on the new slot`);
    else if (r.lastUid < m.lastUid || r.highestModseq < m.highestModseq) out.push(`${m.name}: last UID ${r.lastUid}, modseq ${r.highestModseq} on the new slot, behind the master's ${m.lastUid}, ${m.highestModseq}`);
  }
  return out;
}

export function differences(v: CompareView): string[] | undefined {
  const c = checks(v);
  if (!c || c.master.error || c.target.error) return undefined;
  return notCaughtUp(c.master.mailboxes, c.target.mailboxes);
}

export const checkError = (v: CompareView) => {
  const c = checks(v);
  const error = c?.master.error || c?.target.error;
  return error ? `mbexamine: ${error}` : undefined;
};

/** The master's summary of the current comparison arrived, and when the coordinator saw it (0: not yet). */
export const masterSummarized = (v: CompareView) => Boolean(v.checkId) && v.master?.results.check?.op === v.checkId;
export const masterSeenAt = (v: CompareView) => Number(v.op.result.masterSeenAt ?? 0);
export const targetAsked = (v: CompareView) => v.op.result.targetAsked === v.checkId;

export const summary = (d: readonly string[]) => `${d.length} difference(s): ${d.slice(0, 5).join('; ')}${d.length > 5 ? '; …' : ''}`;
export const mailboxCount = (v: CompareView) => checks(v)!.master.mailboxes.filter((m) => m.exists && !m.name.startsWith('DELETED.')).length;

/** Rows that compare both slots again every 2 s while they differ (mail arriving replicates within a second or two). */
export function compareRows<V extends CompareView, A extends string, S extends string>(step: S, onEqual: Pick<Rule<V, A | CompareAction, S>, 'to' | 'state' | 'reason' | 'action' | 'doc'>, onFail: Pick<Rule<V, A | CompareAction, S>, 'to' | 'state' | 'action'>): Rule<V, A | CompareAction, S>[] {
  return [
    { from: step, ...onFail, reason: 'check failed', failure: true, doc: 'mbexamine failed on either slot', when: checkError },
    {
      from: step, to: step, reason: 'master summarized', action: 'note-master', doc: 'the master\'s summary arrived (its time noted)',
      when: (v) => (masterSummarized(v) && masterSeenAt(v) === 0 ? `${v.params.master} summarized ${v.master!.results.check!.mailboxes.length} mailbox(es)` : undefined),
    },
    {
      from: step, to: step, reason: 'new slot asked', action: 'request-target-check', doc: '1.5 s after the master\'s summary: the new slot is summarized (replication is a second behind)',
      when: (v) => (masterSeenAt(v) > 0 && !targetAsked(v) && v.now - masterSeenAt(v) >= COMPARE.lagMs ? `summarizing ${v.params.target}, ${v.now - masterSeenAt(v)} ms after the master` : undefined),
    },
    {
      from: step, ...onEqual,
      when: (v) => (differences(v)?.length === 0 ? `every one of the master's ${mailboxCount(v)} mailbox(es) is on ${v.params.target} as the master had it a moment before, or newer` : undefined),
    },
    {
      from: step, ...onFail, reason: 'new replica differs', failure: true, doc: 'still differences after 2 min',
      when: (v) => {
        const d = differences(v);
        return d?.length && stepAge(v) > v.params.verifyTimeoutMs ? `after ${Math.round(stepAge(v) / 1000)} s still ${summary(d)}` : undefined;
      },
    },
    {
      from: step, to: step, reason: 'checking again', action: 'request-check', doc: 'differences, and the last check was asked 2 s ago or more',
      when: (v) => {
        const d = differences(v);
        const asked = Number(v.op.result.checkAskedAt ?? 0);
        return d?.length && v.now - asked >= COMPARE.recheckMs ? `${summary(d)} (mail arriving meanwhile replicates within a second or two)` : undefined;
      },
    },
  ];
}


/** The machine is up and its agent connected to this coordinator. */
export const up = (m: MachineRow | undefined, connected: ReadonlySet<string>): boolean => m !== undefined && m.state === 'up' && connected.has(m.name);

/** What both kinds' views hold: the store, the master and the new slot with their machines, the comparison, the seed slot. */
export interface CopyView<P extends CompareView['params']> extends CompareView {
  params: P;
  store: StoreRow;
  masterMachine: MachineRow | undefined;
  targetMachine: MachineRow | undefined;
  connected: ReadonlySet<string>;
  /** In preflight: why no seed slot is free ('' when one is; seed-limits.ts). */
  seedWait: string;
}

/** The view fields both kinds read, from the database now; undefined when the store left the cluster. */
export function copyView<P extends CompareView['params']>(op: OperationRow, ctx: KindContext): CopyView<P> | undefined {
  const { storage } = ctx;
  const params = op.params as unknown as P;
  const store = op.store ? storage.stores.get(op.store) : undefined;
  if (!store) return undefined;
  return {
    now: Date.now(),
    op,
    params,
    store,
    master: storage.slots.get(params.master),
    target: storage.slots.get(params.target),
    masterMachine: storage.machines.get(params.masterMachine),
    targetMachine: storage.machines.get(params.targetMachine),
    connected: ctx.connected(),
    checkId: typeof op.result.checkId === 'string' ? op.result.checkId : '',
    seedWait: op.step === 'preflight' ? seedSlotProblem({ id: op.id, masterMachine: params.masterMachine, targetMachine: params.targetMachine }, storage.operations.running(), ctx.seedLimits) : '',
  };
}

/** The actions the comparison's rows name. */
export function compareAction(action: CompareAction, v: CompareView, ctx: KindContext): void {
  const { storage } = ctx;
  const p = v.params;
  switch (action) {
    case 'request-check': {
      // the master first; the new slot once the master's summary is in and replication had time to carry it
      const attempt = Number(v.op.result.checkAttempt ?? 0) + 1;
      const checkId = `${v.op.id}.${attempt}`;
      // what the comparison this one repeats found ('' for a first one): said while the new one waits, since the
      // time between two comparisons is mostly the wait for their summaries
      const d = differences(v);
      const lastDifferences = d?.length ? summary(d) : '';
      storage.transaction(() => {
        storage.requests.put(p.master, { kind: 'check', id: checkId, mailboxes: [ALL_MAILBOXES] });
        storage.operations.mergeResult(v.op.id, { checkAttempt: attempt, checkId, checkAskedAt: Date.now(), masterSeenAt: 0, targetAsked: '', lastDifferences });
      });
      ctx.push([p.masterMachine]);
      return;
    }
    case 'note-master':
      storage.operations.mergeResult(v.op.id, { masterSeenAt: v.now });
      return;
    case 'request-target-check':
      storage.transaction(() => {
        storage.requests.put(p.target, { kind: 'check', id: v.checkId, mailboxes: [ALL_MAILBOXES] });
        storage.operations.mergeResult(v.op.id, { targetAsked: v.checkId });
      });
      ctx.push([p.targetMachine]);
  }
}

export const COMPARE_ACTION_DOCS: Record<CompareAction, string> = {
  'request-check': 'ask the master to summarize every mailbox (mbexamine), as a new comparison',
  'note-master': "note when the master's summary arrived",
  'request-target-check': 'ask the new slot to summarize every mailbox',
};

/**
 * Why a comparison waits, in a sentence: while a repeated comparison waits for its summaries, with what the one
 * before it found (on a busy host the next one is asked the moment a result arrives: its differences would never
 * be said otherwise — CI beside two busy loops).
 */
export function compareWaiting(v: CompareView): string {
  const p = v.params;
  const d = differences(v);
  const last = typeof v.op.result.lastDifferences === 'string' && v.op.result.lastDifferences ? `; the last comparison found ${v.op.result.lastDifferences}` : '';
  if (!masterSummarized(v)) return `${p.master}'s mailbox summary (check ${v.checkId || 'not asked yet'})${last}`;
  if (!targetAsked(v)) return `${COMPARE.lagMs} ms of replication before ${p.target} is summarized${last}`;
  if (!d) return `${p.target}'s mailbox summary (check ${v.checkId})${last}`;
  return `${summary(d)}: checking again every ${COMPARE.recheckMs / 1000} s, ${until(v.op.stepSince, p.verifyTimeoutMs)}`;
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(bytes < 10e6 ? 1 : 0);

/**
 * How far the copy `id` got, as the master's agent last reported it (every second or so, batch by batch): users,
 * bytes and messages done of the master's totals, and the time left at the rate so far. '' before its first report.
 */
export function seedProgressText(master: Pick<SlotRow, 'results'> | undefined, id: string): string {
  const p = master?.results['seed-progress'];
  if (!p || p.op !== id) return '';
  const pct = p.bytes > 0 ? Math.floor((p.bytesDone / p.bytes) * 100) : p.users > 0 ? Math.floor((p.usersDone / p.users) * 100) : 0;
  const elapsed = (Date.parse(p.updatedAt) - Date.parse(p.startedAt)) / 1000;
  const rate = elapsed > 0 ? p.bytesDone / elapsed : 0;
  // an end time, not seconds left: the sentence is stored when it changes, and a countdown would change every second
  const left = rate > 0 && p.bytes > p.bytesDone ? `, done about ${clock(new Date(Date.parse(p.updatedAt) + ((p.bytes - p.bytesDone) / rate) * 1000).toISOString())} at ${mb(rate)} MB/s` : '';
  return `: ${p.usersDone} of ${p.users} user(s), ${mb(p.bytesDone)} of ${mb(p.bytes)} MB (${pct}%), ${p.messagesDone} of ${p.messages} message(s)${left}`;
}

/**
 * When a copy of operation `op` last showed it was moving: the master's last progress report of one of its copies
 * (request ids start with the operation's), or 0. A copy's time limit counts from this, not from its start: a large
 * store copies for hours, a stuck one reports nothing.
 */
export function lastProgressAt(master: Pick<SlotRow, 'results'> | undefined, op: string): number {
  const p = master?.results['seed-progress'];
  return p && (p.op === op || p.op.startsWith(`${op}.`)) ? Date.parse(p.updatedAt) || 0 : 0;
}
