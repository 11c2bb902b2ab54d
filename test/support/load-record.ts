// The load generator's record (tools/load-generator.ts writes it, one JSON object a line) and the loss check over
// it: every acknowledged message stored exactly once, nothing stored that was never acknowledged, nothing left in
// flight or rejected, and a record that proves something (acknowledgements for every store it covered). Pure, so
// that the check itself is unit-tested (load-record.test.ts).
import { readFileSync } from 'node:fs';

/** Message-IDs of load messages are `<ID@LOAD_DOMAIN>`, ID = `PREFIX-SEQ`. */
export const LOAD_DOMAIN = 'load.slotctl.test';

export interface LoadMessage {
  id: string;
  store: string;
  user: string;
  attempts: number;
  /** Attempts that failed after the message's final dot was sent, before any reply: each may have left a copy. */
  cutAfterData: number;
  /** Each such attempt: when it began and ended, where it went and why it failed (a reply timeout, a reset…). */
  cuts?: { at: string; ms: number; host: string; reason: string }[];
}

export interface LoadSummary {
  prefix: string;
  sent: number;
  acked: number;
  retries: number;
  rejected: number;
  longestMs: number;
  inFlight: number;
  inFlightMessages: LoadMessage[];
}

export type LoadLine = ({ type: 'ack'; at: string } & LoadMessage) | ({ type: 'rejected'; reason: string } & LoadMessage) | ({ type: 'summary' } & LoadSummary);

export interface LoadRecord {
  acks: LoadMessage[];
  rejected: LoadMessage[];
  summary: LoadSummary | undefined;
}

export function parseLoadRecord(text: string): LoadRecord {
  const record: LoadRecord = { acks: [], rejected: [], summary: undefined };
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const l = JSON.parse(line) as LoadLine;
    if (l.type === 'ack') record.acks.push(l);
    else if (l.type === 'rejected') record.rejected.push(l);
    else if (l.type === 'summary') record.summary = l;
    else throw new Error(`unknown load record line: ${line}`);
  }
  return record;
}

export const readLoadRecord = (path: string): LoadRecord => parseLoadRecord(readFileSync(path, 'utf8'));

/** The load ID in a Message-ID of this load (`<PREFIX-7@load.slotctl.test>` → `PREFIX-7`), else undefined. */
export function loadIdOf(messageId: string, prefix: string): string | undefined {
  const m = /^<?([^<>@]+)@([^<>]+)>?$/.exec(messageId.trim());
  if (!m || m[2] !== LOAD_DOMAIN) return undefined;
  return m[1]!.startsWith(`${prefix}-`) && /^\d+$/.test(m[1]!.slice(prefix.length + 1)) ? m[1] : undefined;
}

/** Per store, per user: the load IDs found in the user's folders on the store's master, one entry per copy. */
export type FoundLoad = Record<string, Record<string, string[]>>;

export interface LoadCheckOptions {
  /**
   * Why this test expects a delivery cut off after its data to be stored and then retried (at-least-once delivery,
   * as with any mail server after a crash). Without it every duplicate is a failure; with it a duplicate passes only
   * if its extra copies are no more than the attempts of that message that were cut off after their data.
   */
  duplicatesFromRetries?: string;
}

const describe = (m: LoadMessage) => {
  const cuts = (m.cuts ?? []).map((c) => `; cut at ${c.at} after ${c.ms} ms to ${c.host}: ${c.reason}`).join('');
  return `${m.id} (${m.store}/${m.user}, ${m.attempts} attempt(s), ${m.cutAfterData} cut off after the data${cuts})`;
};

/** Problems (each a failure) and explained duplicates (each printed) of a load against what the masters hold. */
export function loadProblems(record: LoadRecord, found: FoundLoad, stores: readonly string[], options: LoadCheckOptions = {}): { problems: string[]; explained: string[] } {
  const problems: string[] = [];
  const explained: string[] = [];
  const { acks, summary } = record;
  if (!summary) problems.push('the load generator left no summary: it was not stopped, or it died before it finished');
  else {
    if (summary.inFlight > 0) problems.push(`${summary.inFlight} deliveries still in flight when the load stopped: ${summary.inFlightMessages.map(describe).join(', ')}`);
    if (summary.acked !== acks.length) problems.push(`the summary counts ${summary.acked} acknowledgements, the record holds ${acks.length}`);
  }
  if (record.rejected.length) problems.push(`${record.rejected.length} deliveries rejected: ${record.rejected.map(describe).join(', ')}`);
  if (acks.length === 0) problems.push('no delivery was acknowledged: the check would prove nothing');
  for (const store of stores) if (!acks.some((a) => a.store === store)) problems.push(`no acknowledged delivery to ${store}: the check would prove nothing there`);

  const acked = new Map(acks.map((a) => [a.id, a]));
  for (const a of acks) {
    const copies = (found[a.store]?.[a.user] ?? []).filter((id) => id === a.id).length;
    if (copies === 0) problems.push(`acknowledged but missing on ${a.store}'s master: ${describe(a)}`);
    else if (copies > 1) {
      const extra = copies - 1;
      if (options.duplicatesFromRetries && extra <= a.cutAfterData) explained.push(`${copies} copies of ${describe(a)}: ${options.duplicatesFromRetries}`);
      else problems.push(`${copies} copies of ${describe(a)}${options.duplicatesFromRetries ? ', more than its cut-off attempts explain' : ''}`);
    }
  }
  // a load message where it was never acknowledged: in flight, rejected, or stored for another store or user
  for (const [store, byUser] of Object.entries(found)) {
    for (const [user, ids] of Object.entries(byUser)) {
      for (const id of new Set(ids)) {
        const a = acked.get(id);
        if (!a) problems.push(`stored on ${store}/${user} but never acknowledged: ${id}`);
        else if (a.store !== store || a.user !== user) problems.push(`stored on ${store}/${user} but acknowledged for ${a.store}/${a.user}: ${id}`);
      }
    }
  }
  return { problems, explained };
}
