// The checker on hand-written histories: a clean run passes; each rule is made to fail once, with its violation and
// the excerpt that shows it; 'unknown' outcomes are allowed both ways (there or not, flag set or not).
import { describe, expect, it } from 'vitest';
import type { MessageFacts, Snapshot } from '../support/mail-compare.js';
import { type FinalState, atRiskFrom, check, internalMailbox, passed, renderReport } from './checker.js';
import { type History, type NemesisEvent, type Operation, emptyHistory } from './history.js';

let seq = 0;
/** One operation of client c1 on s01/ann, from `start` to `end` (no end: it never ended). */
function op(kind: Operation['kind'], start: number, end: number | undefined, outcome: Operation['outcome'], extra: Partial<Operation> = {}): Operation {
  const o: Operation = { id: `c1-${++seq}`, client: 'c1', kind, store: 's01', user: 'ann', start, ...extra };
  if (end !== undefined) Object.assign(o, { end, outcome });
  return o;
}
const deliver = (m: string, start: number, end: number | undefined, outcome: Operation['outcome'] = 'ok') => op('deliver', start, end, outcome, { messageId: `<${m}>`, bodyHash: `body-${m}` });
const append = (m: string, folder: string, start: number, end: number, outcome: Operation['outcome'] = 'ok', flags: string[] = []) => op('append', start, end, outcome, { folder, messageId: `<${m}>`, bodyHash: `body-${m}`, flags });
const flagOp = (kind: 'set-flags' | 'clear-flags', m: string, start: number, end: number, outcome: Operation['outcome'], flags = ['\\Seen'], folder = 'INBOX') => op(kind, start, end, outcome, { folder, messageId: `<${m}>`, flags });
const expunge = (m: string, start: number, end: number, outcome: Operation['outcome'], folder = 'INBOX') => op('expunge', start, end, outcome, { folder, messageId: `<${m}>` });
const folderOp = (kind: 'create-folder' | 'delete-folder', folder: string, start: number, end: number, outcome: Operation['outcome']) => op(kind, start, end, outcome, { folder });

const msg = (m: string, flags: string[] = [], body = `body-${m}`): MessageFacts => ({ messageId: `<${m}>`, flags, sha256: `whole-${m}`, bodySha256: body });
const history = (operations: Operation[], nemesis: NemesisEvent[] = []): History => ({ ...emptyHistory(), operations, nemesis });
/** The same snapshot on master and replica of s01 (ann's folders). */
const same = (folders: Record<string, MessageFacts[]>): FinalState => ({ s01: { master: { ann: folders }, replica: { ann: structuredClone(folders) } } });

const crash: NemesisEvent[] = [
  { at: 15, kind: 'crash', target: 'm3', phase: 'start', step: 4 },
  { at: 40, kind: 'crash', target: 'm3', phase: 'end', step: 4 },
  { at: 500, kind: 'isolate', target: 'm2', phase: 'start', step: 9 },
  { at: 510, kind: 'isolate', target: 'm2', phase: 'end', step: 9 },
];

/** A clean run: deliveries, a folder with an append, flags set and cleared, an expunge, a folder created and deleted. */
function cleanRun(): { h: History; final: FinalState } {
  const ops = [
    deliver('d1', 10, 20),
    deliver('d2', 12, 22),
    folderOp('create-folder', 'INBOX/Work', 30, 35, 'ok'),
    append('a1', 'INBOX/Work', 40, 45, 'ok', ['\\Flagged']),
    flagOp('set-flags', 'd1', 50, 55, 'ok'),
    flagOp('set-flags', 'd2', 50, 55, 'ok'),
    flagOp('clear-flags', 'd2', 60, 65, 'ok'),
    expunge('d2', 70, 75, 'ok'),
    folderOp('create-folder', 'INBOX/Old', 80, 85, 'ok'),
    folderOp('delete-folder', 'INBOX/Old', 90, 95, 'ok'),
    deliver('d3', 100, 110, 'fail'),
  ];
  return { h: history(ops, crash), final: same({ INBOX: [msg('d1', ['\\Seen'])], 'INBOX/Work': [msg('a1', ['\\Flagged'])] }) };
}

describe('a clean history', () => {
  it('passes, with its operations counted', () => {
    const { h, final } = cleanRun();
    const report = check(h, final);
    expect(report.violations).toEqual([]);
    expect(passed(report)).toBe(true);
    expect(report.summary.operations).toEqual({ deliver: { ok: 2, fail: 1 }, 'create-folder': { ok: 2 }, append: { ok: 1 }, 'set-flags': { ok: 2 }, 'clear-flags': { ok: 1 }, expunge: { ok: 1 }, 'delete-folder': { ok: 1 } });
    expect(report.summary).toMatchObject({ violations: {}, folders: 3, messages: 4, usersIgnored: [] });
  });

  it('leaves users no client touched to other checks, and foreign messages alone', () => {
    const { h, final } = cleanRun();
    final.s01!.master.bob = { INBOX: [msg('load-1')] };
    final.s01!.replica.bob = { INBOX: [msg('load-1')] };
    final.s01!.master.ann!.INBOX!.push(msg('L-7@load'));
    final.s01!.replica.ann!.INBOX!.push(msg('L-7@load'));
    const report = check(h, final, { foreign: (id) => id.endsWith('@load>') });
    expect(report.violations).toEqual([]);
    expect(report.summary.usersIgnored).toEqual(['s01/bob']);
  });

  it('fails when the runner adds a two-master moment or an unexplained at-risk record', () => {
    const { h, final } = cleanRun();
    const report = check(h, final);
    report.twoMasterMoments.push({ at: 1, ip: '10.231.1.5', ms: 12, machines: ['m1', 'm2'] });
    expect(passed(report)).toBe(false);
    expect(renderReport(report)).toContain('[two masters] 10.231.1.5 for 12 ms: m1, m2');
  });
});

describe('each rule, broken once', () => {
  it('lost: an acknowledged delivery is missing; the excerpt shows it and the crash during it', () => {
    const { h, final } = cleanRun();
    final.s01!.master.ann!.INBOX = [];
    final.s01!.replica.ann!.INBOX = [];
    const [v, ...rest] = check(h, final).violations;
    expect(rest).toEqual([]);
    expect(v).toMatchObject({ rule: 'lost', store: 's01', user: 'ann', folder: 'INBOX', messageId: '<d1>', what: '<d1>: acknowledged in s01/ann INBOX but it is not there, and no removal could have followed' });
    expect(v!.excerpt.map((e) => e.op?.kind ?? `${e.nemesis!.kind} ${e.nemesis!.phase}`)).toEqual(['deliver', 'crash start', 'crash end', 'set-flags']);
    expect(renderReport(check(h, final), 10).slice(3)).toEqual([
      `[lost] ${v!.what}`,
      `    +0.000 s  c1/${h.operations[0]!.id} deliver s01/ann <d1> → ok at +0.010 s`,
      '    +0.005 s  nemesis crash m3 start (#4)',
      '    +0.030 s  nemesis crash m3 end (#4)',
      `    +0.040 s  c1/${h.operations[4]!.id} set-flags s01/ann <d1> in INBOX [\\Seen] → ok at +0.045 s`,
    ]);
  });

  it('duplicate: two copies of a message sent once', () => {
    const { h, final } = cleanRun();
    final.s01!.master.ann!.INBOX!.push(msg('d1', ['\\Seen']));
    final.s01!.replica.ann!.INBOX!.push(msg('d1', ['\\Seen']));
    expect(check(h, final).violations).toMatchObject([{ rule: 'duplicate', messageId: '<d1>', what: '<d1>: 2 copies in s01/ann INBOX, from 1 attempt(s) that may have stored one' }]);
  });

  it('phantom: a message never sent, one whose delivery failed, one sent to another folder', () => {
    const { h, final } = cleanRun();
    for (const side of ['master', 'replica'] as const) {
      final.s01![side].ann!.INBOX!.push(msg('zz'), msg('d3'));
      final.s01![side].ann!['INBOX/Work']!.push(msg('d1', ['\\Seen']));
    }
    const vs = check(h, final).violations;
    expect(vs.map((v) => [v.rule, v.what])).toEqual([
      ['phantom', '<d3> is in s01/ann INBOX, but every attempt to store it failed'],
      ['phantom', '<zz> is in s01/ann INBOX, but it was never sent'],
      ['phantom', '<d1> is in s01/ann INBOX/Work, but it was sent to s01/ann INBOX'],
    ]);
    expect(vs[1]!.excerpt).toEqual([]); // nothing in the history touched it
  });

  it('resurrected: an expunged message back, a deleted folder back', () => {
    const { h, final } = cleanRun();
    for (const side of ['master', 'replica'] as const) {
      final.s01![side].ann!.INBOX!.push(msg('d2'));
      final.s01![side].ann!['INBOX/Old'] = [];
    }
    const vs = check(h, final).violations;
    expect(vs.map((v) => [v.rule, v.folder, v.messageId])).toEqual([
      ['resurrected', 'INBOX', '<d2>'],
      ['resurrected', 'INBOX/Old', undefined],
    ]);
    expect(vs[0]!.what).toBe('<d2> is in s01/ann INBOX after an acknowledged EXPUNGE that nothing followed');
    expect(vs[0]!.excerpt.map((e) => e.op?.kind)).toEqual(['deliver', undefined, undefined, 'set-flags', 'clear-flags', 'expunge']);
    expect(vs[1]!.excerpt.map((e) => e.op?.kind)).toEqual(['create-folder', 'delete-folder']);
  });

  it('explains an expunge, delete or flag change undone by a disaster failover whose at-risk record names its mailbox', () => {
    const { h, final } = cleanRun();
    for (const side of ['master', 'replica'] as const) {
      final.s01![side].ann!.INBOX!.push(msg('d2'));
      final.s01![side].ann!['INBOX/Old'] = [];
      final.s01![side].ann!.INBOX![0]!.flags = [];
    }
    // the failover (at 100) came after the changes (50–95) and names both mailboxes: undone by design, explained
    const atRisk = [{ id: 7, store: 's01', at: 100, from: 45, mailboxes: ['user.ann', 'DELETED.user.ann.Old.5F3A'], state: 'recovered' }];
    const report = check(h, final, { atRisk });
    expect(report.violations.map((v) => [v.rule, v.explainedBy?.slice(0, 20)])).toEqual([
      ['flags', 'at-risk record #7 (r'],
      ['resurrected', 'at-risk record #7 (r'],
      ['resurrected', 'at-risk record #7 (r'],
    ]);
    expect(passed(report)).toBe(true);
    expect(report.summary).toMatchObject({ violations: {}, explained: 3 });
    // a record of another mailbox, a failover before the change, or a window starting well after it explains nothing
    for (const other of [{ ...atRisk[0]!, mailboxes: ['user.bob'] }, { ...atRisk[0]!, at: 40, from: 30 }, { ...atRisk[0]!, store: 's02' }, { ...atRisk[0]!, at: 2000, from: 1200 }]) {
      expect(passed(check(h, final, { atRisk: [other] }))).toBe(false);
    }
    // a window that starts just after the change (the report's way to the coordinator): still explained
    expect(passed(check(h, final, { atRisk: [{ ...atRisk[0]!, from: 99 }] }))).toBe(true);
    // a lost message is never explained
    const lost = cleanRun();
    lost.final.s01!.master.ann!.INBOX = [];
    lost.final.s01!.replica.ann!.INBOX = [];
    expect(check(lost.h, lost.final, { atRisk }).violations.filter((v) => !v.explainedBy).map((v) => v.rule)).toEqual(['lost']);
  });

  it("starts an at-risk record's window at its oldest logged change, or earlier when changes went unlogged", () => {
    const clock = (wall: string) => Date.parse(wall); // the run's clock in ms, here the wall clock itself
    const base = { reportedAt: '2026-12-06T13:14:41.710Z', files: 0, oldestChangeAgeMs: 0 };
    expect(atRiskFrom(base, clock)).toBe(clock(base.reportedAt));
    expect(atRiskFrom({ ...base, files: 2, oldestChangeAgeMs: 5000 }, clock)).toBe(clock(base.reportedAt) - 5000);
    expect(atRiskFrom({ ...base, reportedAt: '' }, clock)).toBe(-Infinity);
    // seed 12914 (ci-160): 0 files reported at 41.7 s, but the meta partition was full from 17.9 s: a \Seen set at
    // 18.5 s on the old master was in no sync log, and its window must hold it
    const unlogged = { ...base, unloggedSince: '2026-12-06T13:14:17.870Z' };
    expect(atRiskFrom(unlogged, clock)).toBe(clock('2026-12-06T13:14:17.870Z'));
    expect(atRiskFrom({ ...unlogged, files: 1, oldestChangeAgeMs: 60_000 }, clock)).toBe(clock(base.reportedAt) - 60_000);
    expect(atRiskFrom({ ...unlogged, unloggedSince: '' }, clock)).toBe(clock(base.reportedAt));
  });

  it('names a folder as Cyrus does', () => {
    expect([internalMailbox('ann', 'INBOX'), internalMailbox('ann', 'Work'), internalMailbox('ann', 'INBOX/Work/2026'), internalMailbox('ann', 'v1.2')]).toEqual(['user.ann', 'user.ann.Work', 'user.ann.Work.2026', 'user.ann.v1^2']);
  });

  it('flags: a flag the last acknowledged change set is missing, one it cleared is set', () => {
    const { h, final } = cleanRun();
    for (const side of ['master', 'replica'] as const) final.s01![side].ann = { INBOX: [msg('d1', [])], 'INBOX/Work': [msg('a1', ['\\Answered', '\\Flagged'])] };
    expect(check(h, final).violations.map((v) => [v.rule, v.what])).toEqual([
      ['flags', '<d1> in s01/ann INBOX: \\Seen is not set, but the last acknowledged change set it and no unknown change came after'],
      ['flags', '<a1> in s01/ann INBOX/Work: \\Answered is set, but the last acknowledged change cleared it (or never set it) and no unknown change came after'],
    ]);
  });

  it('damaged: a message whose body is not what was sent', () => {
    const { h, final } = cleanRun();
    final.s01!.master.ann!.INBOX = [msg('d1', ['\\Seen'], 'body-other')];
    final.s01!.replica.ann!.INBOX = [msg('d1', ['\\Seen'], 'body-other')];
    expect(check(h, final).violations).toMatchObject([{ rule: 'damaged', messageId: '<d1>' }]);
  });

  it('replica: a message, a flag and a folder that differ between master and replica', () => {
    const { h, final } = cleanRun();
    final.s01!.replica.ann!.INBOX = [];
    final.s01!.replica.ann!['INBOX/Work'] = [msg('a1', [])];
    final.s01!.replica.ann!['INBOX/Old'] = [];
    const vs = check(h, final).violations;
    expect(vs.map((v) => [v.rule, v.what])).toEqual([
      ['replica', 's01/ann INBOX <d1>: on the master [\\Seen] whole-d1; on the replica absent'],
      ['replica', 's01/ann: folder INBOX/Old only on the replica'],
      ['replica', 's01/ann INBOX/Work <a1>: on the master [\\Flagged] whole-a1; on the replica [] whole-a1'],
    ]);
    expect(vs[0]!.excerpt.map((e) => e.op?.kind).filter(Boolean)).toEqual(['deliver', 'set-flags']);
  });

  it('unended: an operation that never ended, with the nemesis around it', () => {
    const { h, final } = cleanRun();
    h.operations.push(deliver('d9', 505, undefined));
    const vs = check(h, final).violations;
    expect(vs.map((v) => [v.rule, v.messageId])).toEqual([['unended', '<d9>']]); // d9 absent is allowed: it may not have happened
    expect(vs[0]!.what).toBe(`c1/${h.operations.at(-1)!.id} deliver s01/ann <d9> did not end`);
    expect(vs[0]!.excerpt.map((e) => e.op?.kind ?? `${e.nemesis!.kind} ${e.nemesis!.phase}`)).toEqual(['isolate start', 'deliver', 'isolate end']);
    expect(check(h, final).summary.operations.deliver).toEqual({ ok: 2, fail: 1, unended: 1 });
  });
});

describe("'unknown' outcomes", () => {
  const run = (ops: Operation[], inbox: MessageFacts[]) => check(history(ops), same({ INBOX: inbox })).violations;

  it('an unknown delivery may be there once or not at all, never twice', () => {
    const ops = [deliver('u', 10, 20, 'unknown')];
    expect(run(ops, [])).toEqual([]);
    expect(run(ops, [msg('u')])).toEqual([]);
    expect(run(ops, [msg('u'), msg('u')]).map((v) => v.rule)).toEqual(['duplicate']);
  });

  it('an unknown expunge may have removed an acknowledged message or not', () => {
    const ops = [deliver('m', 10, 20), expunge('m', 30, 40, 'unknown')];
    expect(run(ops, [])).toEqual([]);
    expect(run(ops, [msg('m', ['\\Deleted'])])).toEqual([]); // its first half (\Deleted) may have landed
    // a failed expunge removed nothing
    expect(run([deliver('m', 10, 20), expunge('m', 30, 40, 'fail')], []).map((v) => v.rule)).toEqual(['lost']);
  });

  it('an expunge overlapping the delivery may have come first: the message may stay', () => {
    expect(run([deliver('m', 10, 30), expunge('m', 20, 25, 'ok')], [msg('m')])).toEqual([]);
    expect(run([deliver('m', 10, 30), expunge('m', 20, 25, 'ok')], [])).toEqual([]);
  });

  it('an unknown flag change after the last acknowledged one allows either value; before it, it does not', () => {
    const after = [deliver('m', 10, 20), flagOp('set-flags', 'm', 30, 40, 'ok'), flagOp('clear-flags', 'm', 50, 60, 'unknown')];
    expect(run(after, [msg('m', ['\\Seen'])])).toEqual([]);
    expect(run(after, [msg('m', [])])).toEqual([]);
    const before = [deliver('m', 10, 20), flagOp('clear-flags', 'm', 25, 28, 'unknown'), flagOp('set-flags', 'm', 30, 40, 'ok')];
    expect(run(before, [msg('m', ['\\Seen'])])).toEqual([]);
    expect(run(before, [msg('m', [])]).map((v) => v.rule)).toEqual(['flags']);
  });

  it('two acknowledged flag changes that overlap in time allow either order', () => {
    const ops = [deliver('m', 10, 20), flagOp('set-flags', 'm', 30, 50, 'ok'), flagOp('clear-flags', 'm', 40, 45, 'ok')];
    expect(run(ops, [msg('m', ['\\Seen'])])).toEqual([]);
    expect(run(ops, [msg('m', [])])).toEqual([]);
  });
});
