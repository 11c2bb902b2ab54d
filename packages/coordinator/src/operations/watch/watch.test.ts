// The level-triggered checks read as tables: what happens to each store of a down machine, and to each returning old
// master's at-risk record.
import { describe, expect, it } from 'vitest';
import { EMPTY_BACKLOG, type AtRiskRow, type OperationRow, type StoreRow } from '../../db/rows.js';
import { firstMatch } from '../framework/rule.js';
import { iso, slot } from '../rows.fixture.js';
import { FAILOVER_WATCH_RULES, type DownStoreView } from './failover.js';
import { RECOVERY_WATCH_RULES, type ReturnView } from './recovery.js';

const store: StoreRow = { name: 's01', serviceIp: '10.0.2.1', masterSlot: 's01-m1', replicaSlot: 's01-m2', epoch: 5 };
const op = (kind: OperationRow['kind'], over: Partial<OperationRow> = {}): OperationRow => ({
  id: `${kind}-1`, kind, store: 's01', machine: null, state: 'running', step: 'preflight', stepSince: iso(0), params: {}, result: {}, error: '', parent: null, cancelRequested: false, createdAt: iso(0), updatedAt: iso(0), waiting: '', ...over,
});

describe('the failover watch, per store of a machine that fails over automatically', () => {
  const decide = (over: Partial<DownStoreView>) => {
    let asked = false;
    const v: DownStoreView = { store, machine: 'm1', running: undefined, problems: () => ((asked = true), []), ...over };
    const fired = firstMatch(FAILOVER_WATCH_RULES, v);
    return { action: fired?.rule.action, detail: fired?.detail, asked };
  };

  it('cancels a switchover running against the down machine, and waits for any other operation', () => {
    expect(decide({ running: op('switchover') })).toMatchObject({ action: 'cancel-switchover', asked: false });
    expect(decide({ running: op('switchover', { cancelRequested: true }) })).toMatchObject({ action: 'none', asked: false });
    expect(decide({ running: op('recover') })).toMatchObject({ action: 'none', detail: 'recover recover-1 runs on s01' });
  });

  it('reports what blocks a failover, and otherwise starts one', () => {
    expect(decide({ problems: () => ['replica s01-m2 is not up to date', 'machine m2 is suspect'] })).toEqual({ action: 'report-blocked', detail: 'replica s01-m2 is not up to date; machine m2 is suspect', asked: false });
    expect(decide({})).toEqual({ action: 'start-failover', detail: 'm1 is down', asked: true });
  });
});

describe('the recovery watch, per open at-risk record', () => {
  const record: AtRiskRow = { id: 1, store: 's01', slot: 's01-m1', machine: 'm1', op: 'fo-1', epoch: 6, createdAt: iso(1000), backlog: { ...EMPTY_BACKLOG, reportedAt: null }, state: 'open', mailboxes: [], result: {}, closedAt: null };
  const back = (quarantine: { files: string[]; mailboxes: string[] } | undefined, over: Parameters<typeof slot>[2] = {}) =>
    slot('s01-m1', 'm1', { observedRole: 'REPLICA', epochApplied: 6, reportedAt: iso(2000), quarantine: quarantine && { dir: '/q', ...quarantine }, ...over });
  const decide = (over: Partial<ReturnView>) => firstMatch(RECOVERY_WATCH_RULES, { record, busy: false, slot: back({ files: [], mailboxes: [] }), store, ...over })?.rule.action;

  it('waits while the record is recovered or its store is busy, until the old master reports as replica at the new epoch', () => {
    expect(decide({ record: { ...record, state: 'recovering' } })).toBe('none');
    expect(decide({ busy: true })).toBe('none');
    expect(decide({ slot: undefined })).toBe('none');
    expect(decide({ slot: back(undefined) })).toBe('none');
    expect(decide({ slot: back({ files: [], mailboxes: [] }, { reportedAt: iso(500) }) })).toBe('none'); // a report from before the record
    expect(decide({ slot: back({ files: [], mailboxes: [] }, { observedRole: 'MASTER' }) })).toBe('none');
    expect(decide({ slot: back({ files: [], mailboxes: [] }, { epochApplied: 5 }) })).toBe('none');
  });

  it('closes a record whose old master quarantined nothing, and names the mailboxes of one that did, once', () => {
    expect(decide({})).toBe('close-nothing-lost');
    const named = back({ files: ['log-1'], mailboxes: ['user.a'] });
    expect(decide({ slot: named })).toBe('name-mailboxes');
    expect(decide({ slot: named, record: { ...record, mailboxes: ['user.a'] } })).toBeUndefined();
  });
});
