// The re-replication rule table over hand-made snapshots (pure logic: no database, no agents).
import { describe, expect, it } from 'vitest';
import type { MailboxSummaryRow, OperationRow, SlotRow, StoreRow } from '../../db/rows.js';
import { T0, iso, machine, slot } from '../rows.fixture.js';
import { REREPLICATE, RE_REPLICATION_RULES, rereplicateWaiting, type ReReplicationView } from './rereplicate.js';
import { notCaughtUp } from './copy-compare.js';
import { decide } from '../framework/rule.js';

const mbox = (name: string, messages: number, uniqueid = `u-${name}`): MailboxSummaryRow => ({ name, exists: true, uniqueid, messages, uidvalidity: 1, lastUid: messages, highestModseq: messages });

function view(step: string, over: { master?: Partial<SlotRow>; target?: Partial<SlotRow> | null; store?: Partial<StoreRow>; connected?: string[]; now?: number; result?: Record<string, unknown> } = {}): ReReplicationView {
  const op: OperationRow = {
    id: 'rr-1', kind: 'rereplicate', store: 's01', machine: 'm3', state: 'running', step, stepSince: iso(100), params: {}, result: over.result ?? {}, error: '', parent: null,
    cancelRequested: false, createdAt: iso(0), updatedAt: iso(100), waiting: '',
  };
  return {
    now: T0 + (over.now ?? 200),
    op,
    params: { master: 's01-m2', masterMachine: 'm2', oldReplica: 's01-m1', oldMachine: 'm1', target: 's01-m3', targetMachine: 'm3', dataPath: '/srv/m3/s01/data', metaPath: '/srv/m3/s01/meta', timeoutMs: 3_600_000, verifyTimeoutMs: 120_000 },
    store: { name: 's01', serviceIp: '10.0.3.1', masterSlot: 's01-m2', replicaSlot: 's01-m1', epoch: 5, ...over.store },
    master: slot('s01-m2', 'm2', { observedState: 'SERVING', observedRole: 'MASTER', epochApplied: 5, ...over.master }),
    target: over.target === null ? undefined : slot('s01-m3', 'm3', { observedState: 'SERVING', observedRole: 'REPLICA', epochApplied: 6, seeding: 'rr-1', ...over.target }),
    masterMachine: machine('m2'),
    targetMachine: machine('m3'),
    connected: new Set(over.connected ?? ['m2', 'm3']),
    checkId: typeof over.result?.checkId === 'string' ? over.result.checkId : '',
  };
}

const fire = (v: ReReplicationView) => {
  const f = decide(RE_REPLICATION_RULES, v);
  return f && { to: f.rule.to, action: f.rule.action, state: f.rule.state, detail: f.detail };
};

describe('re-replication rules', () => {
  it('creates the new replica slot when both machines are up and the master serves', () => {
    expect(fire(view('preflight', { target: null }))).toMatchObject({ to: 'create', action: 'create-slot' });
  });

  it('refuses with every reason: a machine not connected, a master that does not serve, a store that moved on', () => {
    const v = fire(view('preflight', { target: null, connected: ['m2'], master: { observedState: 'STOPPED' }, store: { replicaSlot: 's01-m4' } }));
    expect(v).toMatchObject({ to: 'done', state: 'refused' });
    expect(v!.detail).toMatch(/m3 \(new replica\) is not up/);
    expect(v!.detail).toMatch(/s01-m2 is not serving as master/);
    expect(v!.detail).toMatch(/replica is s01-m4 now/);
  });

  it('asks the master to copy once the new replica serves at the new epoch, not before', () => {
    const created = { store: { replicaSlot: 's01-m3', epoch: 6 }, master: { epochApplied: 6 } };
    expect(fire(view('create', { ...created, target: { observedState: 'STARTING' } }))).toBeUndefined();
    expect(fire(view('create', created))).toMatchObject({ to: 'seed', action: 'request-seed' });
  });

  it('fails on a failed seed, naming the users that did not copy; verifies after a good one', () => {
    const seed = (ok: boolean) => ({ op: 'rr-1', ok, users: 3, mailboxes: 5, messages: 90, ms: 400, error: ok ? '' : '1 of 3 did not copy', failed: ok ? [] : ['bob'], finishedAt: iso(150) });
    expect(fire(view('seed', { master: { results: { seed: seed(false) } } }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/not copied: bob/) });
    expect(fire(view('seed', { master: { results: { seed: seed(true) } } }))).toMatchObject({ to: 'verify', action: 'request-check' });
    // another operation's result is not this one's
    expect(fire(view('seed', { master: { results: { seed: { ...seed(true), op: 'rr-0' } } } }))).toBeUndefined();
  });

  it('summarizes the master, then the new replica 1.5 s later; succeeds when it holds what the master held or newer', () => {
    const check = (id: string, mailboxes: MailboxSummaryRow[]) => ({ results: { check: { op: id, mailboxes, error: '' } } });
    const asked = { checkId: 'rr-1.1', checkAskedAt: T0 + 100, masterSeenAt: 0, targetAsked: '' };
    expect(fire(view('verify', { result: asked, master: check('rr-1.1', [mbox('user.ann', 30)]) }))).toMatchObject({ to: 'verify', action: 'note-master' });
    const seen = { ...asked, masterSeenAt: T0 + 200 };
    expect(fire(view('verify', { result: seen, now: 1800, master: check('rr-1.1', [mbox('user.ann', 30)]) }))).toMatchObject({ to: 'verify', action: 'request-target-check' });
    const both = { ...seen, targetAsked: 'rr-1.1' };
    expect(fire(view('verify', { result: both, now: 2000, master: check('rr-1.1', [mbox('user.ann', 30)]), target: check('rr-1.1', [mbox('user.ann', 31)]) }))).toMatchObject({ to: 'done', state: 'succeeded', action: 'finish' });
    const behind = { result: both, master: check('rr-1.1', [mbox('user.ann', 31)]), target: check('rr-1.1', [mbox('user.ann', 30)]) };
    expect(fire(view('verify', { ...behind, now: 2500 }))).toMatchObject({ to: 'verify', action: 'request-check', detail: expect.stringMatching(/last UID 30, modseq 30 on the new slot, behind the master's 31, 31/) });
    expect(fire(view('verify', { ...behind, now: 130_000 }))).toMatchObject({ to: 'done', state: 'failed', detail: expect.stringMatching(/still 1 difference/) });
  });

  it('compares uniqueid, UIDVALIDITY, last UID and modseq of every mailbox of the master, not delayed-deleted ones', () => {
    expect(notCaughtUp([mbox('user.ann', 3), mbox('DELETED.user.ann.Old.5F', 2)], [mbox('user.ann', 3)])).toEqual([]);
    expect(notCaughtUp([mbox('user.ann', 3), mbox('user.ben', 1)], [mbox('user.ann', 2)])).toEqual(["user.ann: last UID 2, modseq 2 on the new slot, behind the master's 3, 3", 'user.ben: missing on the new slot']);
    expect(notCaughtUp([mbox('user.ann', 3, 'a')], [mbox('user.ann', 3, 'b')])).toEqual(['user.ann: uniqueid a on the master, b on the new slot']);
  });

  it('says why it waits, and is never cancelled', () => {
    expect(rereplicateWaiting(view('seed'))).toBe('s01-m2 to copy every user to s01-m3 (sync_client -u), until 11:00:00 without progress');
    const check = (mailboxes: MailboxSummaryRow[]) => ({ results: { check: { op: 'rr-1.1', mailboxes, error: '' } } });
    const behind = view('verify', { result: { checkId: 'rr-1.1', checkAskedAt: T0 + 100, masterSeenAt: T0 + 150, targetAsked: 'rr-1.1' }, master: check([mbox('user.ann', 31)]), target: check([mbox('user.ann', 30)]) });
    expect(rereplicateWaiting(behind)).toBe("1 difference(s): user.ann: last UID 30, modseq 30 on the new slot, behind the master's 31, 31: checking again every 2 s, until 10:02:00");
    // a repeated comparison waiting for its summaries still says what the last one found
    const again = view('verify', { result: { checkId: 'rr-1.2', checkAskedAt: T0 + 2100, masterSeenAt: 0, targetAsked: '', lastDifferences: '1 difference(s): user.ben: missing on the new slot' } });
    expect(rereplicateWaiting(again)).toBe("s01-m2's mailbox summary (check rr-1.2); the last comparison found 1 difference(s): user.ben: missing on the new slot");
    expect(REREPLICATE.cancelRefusal(behind.op)?.hint).toBe('wait for it to end (slotctl operations show rr-1 --wait); run slotctl machine retire again to resume a failed one');
  });
});
