// The agent's metrics from a made-up view of its state and counters called as their sites call them, read back
// through prom-client's JSON (names, labels, values; the text format is read back in test/agent-metrics.test.ts).
import { describe, expect, it } from 'vitest';
import type { PartitionReport } from '@slotctl/shared';
import { cleanup } from '../requests/cleanup.js';
import type { RequestJob } from '../requests/handler.js';
import type { SlotSupervisor } from '../slot/supervisor.js';
import { isReplicationStuck as isStuck } from '@slotctl/shared';
import { AgentMetrics, FENCE_ACTIONS, type AgentView, type SlotObservation } from './metrics.js';

type Json = Awaited<ReturnType<AgentMetrics['json']>>;

/** The samples of one metric family: labels (as strings) and value. */
function samples(json: Json, name: string): { labels: Record<string, string>; value: number }[] {
  const family = json.find((m) => m.name === name);
  if (!family) throw new Error(`no ${name} in ${json.map((m) => m.name).join(', ')}`);
  return family.values.map((v) => ({ labels: Object.fromEntries(Object.entries(v.labels).map(([k, l]) => [k, String(l)])), value: v.value }));
}

/** The value of the one sample of `name` with exactly these labels (undefined: none). */
function value(json: Json, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samples(json, name).filter((s) => JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

const partition = (role: string, total: number, free: number, inodes: number, freeInodes: number, error = ''): PartitionReport => ({
  role, path: `/srv/${role}`, totalBytes: total, freeBytes: free, totalInodes: inodes, freeInodes, deletedBytes: 0, expungedBytes: 0, measuredAt: '2026-12-04T12:00:00Z', error,
});

const MASTER: SlotObservation = {
  slot: 's01-m1',
  store: 's01',
  role: 'MASTER',
  running: true,
  state: 'SERVING',
  backlog: { files: 3, bytes: 4096, mailboxes: 2, mailboxNames: ['user.amy', 'user.bob'], oldestChangeAgeMs: 42_500, stalled: true, stallReason: 'no progress for 31 s although 127.0.2.1:2005 accepts connections (rolling sync_client stuck?): SYNCERROR' },
  partitions: [partition('data', 1000, 250, 100, 40), partition('meta', 500, 500, 10, 10)],
};
const REPLICA: SlotObservation = {
  slot: 's02-m1',
  store: 's02',
  role: 'REPLICA',
  running: true,
  state: 'SERVING',
  backlog: { files: 0, bytes: 0, mailboxes: 0, mailboxNames: [], oldestChangeAgeMs: 0, stalled: false, stallReason: '' },
  // a measurement that failed shows no series
  partitions: [partition('data', 0, 0, 0, 0, 'ENOENT: no such file or directory')],
};
const FENCED: SlotObservation = {
  slot: 's03-m1',
  store: 's03',
  role: 'MASTER',
  running: false,
  state: 'STOPPED',
  backlog: { files: 1, bytes: 10, mailboxes: 1, mailboxNames: ['user.cy'], oldestChangeAgeMs: 5000, stalled: true, stallReason: 'replica 127.0.2.3:2005 refuses connections; backlog waiting for 40 s' },
  partitions: [],
};

function withView(view: Partial<AgentView>): AgentMetrics {
  const m = new AgentMetrics();
  m.setSource(() => ({ connected: true, term: 7, leaseRemainingMs: 3400, leaseMs: 5000, slots: [MASTER, REPLICA, FENCED], ...view }));
  return m;
}

describe('agent metrics', () => {
  it('shows the session, the lease and the term as the agent holds them now', async () => {
    const json = await withView({}).json();
    expect(value(json, 'slotctl_agent_connected')).toBe(1);
    expect(value(json, 'slotctl_agent_lease_remaining_seconds')).toBe(3.4);
    expect(value(json, 'slotctl_agent_lease_seconds')).toBe(5);
    expect(value(json, 'slotctl_agent_term')).toBe(7);
    // a lease run out is 0, never negative; disconnected is 0
    const gone = await withView({ connected: false, leaseRemainingMs: -12_000 }).json();
    expect(value(gone, 'slotctl_agent_connected')).toBe(0);
    expect(value(gone, 'slotctl_agent_lease_remaining_seconds')).toBe(0);
    const never = await withView({ leaseRemainingMs: undefined, leaseMs: undefined }).json();
    expect(value(never, 'slotctl_agent_lease_remaining_seconds')).toBe(0);
    expect(value(never, 'slotctl_agent_lease_seconds')).toBe(0);
    // renewed through a partner: 1 until an acknowledgement comes directly again
    expect(value(json, 'slotctl_agent_lease_relayed')).toBe(0);
    expect(value(await withView({ connected: false, relayedVia: 'm3' }).json(), 'slotctl_agent_lease_relayed')).toBe(1);
  });

  it('gives each slot one role (the one it runs in: none when no cyrmaster runs) and one state, lower case', async () => {
    const json = await withView({}).json();
    expect(samples(json, 'slotctl_slot_role')).toEqual([
      { labels: { slot: 's01-m1', store: 's01', role: 'master' }, value: 1 },
      { labels: { slot: 's02-m1', store: 's02', role: 'replica' }, value: 1 },
      { labels: { slot: 's03-m1', store: 's03', role: 'none' }, value: 1 },
    ]);
    expect(samples(json, 'slotctl_slot_state')).toEqual([
      { labels: { slot: 's01-m1', store: 's01', state: 'serving' }, value: 1 },
      { labels: { slot: 's02-m1', store: 's02', state: 'serving' }, value: 1 },
      { labels: { slot: 's03-m1', store: 's03', state: 'stopped' }, value: 1 },
    ]);
  });

  it('drops the series of a slot gone from the machine and of a role it no longer runs in', async () => {
    let slots = [MASTER, REPLICA];
    const m = new AgentMetrics();
    m.setSource(() => ({ connected: true, term: 1, leaseRemainingMs: 1000, leaseMs: 5000, slots }));
    expect(samples(await m.json(), 'slotctl_slot_role')).toHaveLength(2);
    slots = [{ ...MASTER, running: false, state: 'STOPPED' }];
    const json = await m.json();
    expect(samples(json, 'slotctl_slot_role')).toEqual([{ labels: { slot: 's01-m1', store: 's01', role: 'none' }, value: 1 }]);
    expect(samples(json, 'slotctl_slot_backlog_files').map((s) => s.labels.slot)).toEqual(['s01-m1']);
  });

  it('shows the backlog, and a stall as stalled, stuck only when the replica accepts connections', async () => {
    const json = await withView({}).json();
    const m = { slot: 's01-m1', store: 's01' };
    expect(value(json, 'slotctl_slot_backlog_files', m)).toBe(3);
    expect(value(json, 'slotctl_slot_backlog_bytes', m)).toBe(4096);
    expect(value(json, 'slotctl_slot_backlog_oldest_change_age_seconds', m)).toBe(42.5);
    expect(value(json, 'slotctl_slot_replication_stalled', m)).toBe(1);
    expect(value(json, 'slotctl_slot_replication_stuck', m)).toBe(1);
    const refused = { slot: 's03-m1', store: 's03' };
    expect(value(json, 'slotctl_slot_replication_stalled', refused)).toBe(1);
    expect(value(json, 'slotctl_slot_replication_stuck', refused)).toBe(0);
    const replica = { slot: 's02-m1', store: 's02' };
    expect(value(json, 'slotctl_slot_replication_stalled', replica)).toBe(0);
    expect(value(json, 'slotctl_slot_replication_stuck', replica)).toBe(0);
    expect(value(json, 'slotctl_slot_backlog_files', replica)).toBe(0);
    // the coordinator's rule: stuck needs a stall
    expect(isStuck({ stalled: false, stallReason: 'accepts connections' })).toBe(false);
  });

  it('shows each partition of the last measurement (used = size − available), none for a failed one', async () => {
    const json = await withView({}).json();
    const data = { slot: 's01-m1', store: 's01', partition: 'data' };
    const meta = { ...data, partition: 'meta' };
    expect(value(json, 'slotctl_partition_used_bytes', data)).toBe(750);
    expect(value(json, 'slotctl_partition_size_bytes', data)).toBe(1000);
    expect(value(json, 'slotctl_partition_inodes_used', data)).toBe(60);
    expect(value(json, 'slotctl_partition_inodes_total', data)).toBe(100);
    expect(value(json, 'slotctl_partition_used_bytes', meta)).toBe(0);
    for (const name of ['slotctl_partition_used_bytes', 'slotctl_partition_size_bytes', 'slotctl_partition_inodes_used', 'slotctl_partition_inodes_total']) {
      expect(samples(json, name).map((s) => `${s.labels.slot}/${s.labels.partition}`)).toEqual(['s01-m1/data', 's01-m1/meta']);
    }
  });

  it('counts what happened, by action, slot and outcome, from 0 for every slot it has seen', async () => {
    const m = withView({});
    let json = await m.json();
    for (const action of FENCE_ACTIONS) expect(value(json, 'slotctl_fence_actions_total', { action })).toBe(0);
    expect(value(json, 'slotctl_cyrus_restarts_total', { slot: 's02-m1' })).toBe(0);
    expect(value(json, 'slotctl_vip_repairs_total', { slot: 's03-m1' })).toBe(0);
    expect(value(json, 'slotctl_cleanup_runs_total', { slot: 's01-m1', outcome: 'failed' })).toBe(0);

    m.fenceAction('lease-expired');
    m.fenceAction('master-stopped');
    m.fenceAction('master-stopped');
    m.fenceAction('lease-regained');
    m.vipRepaired('s01-m1');
    m.cyrusRestarted('s01-m1');
    m.cyrusRestarted('s01-m1');
    m.cleanupRan('s01-m1', { ok: true, seconds: 12.5, freedBytes: 1_000_000 });
    m.cleanupRan('s01-m1', { ok: false, seconds: 3, freedBytes: -20 });
    m.cleanupRan('s02-m1', { ok: false });
    json = await m.json();
    expect(samples(json, 'slotctl_fence_actions_total')).toEqual(expect.arrayContaining([
      { labels: { action: 'lease-expired' }, value: 1 },
      { labels: { action: 'master-stopped' }, value: 2 },
      { labels: { action: 'lease-regained' }, value: 1 },
      { labels: { action: 'master-resumed' }, value: 0 },
    ]));
    expect(value(json, 'slotctl_vip_repairs_total', { slot: 's01-m1' })).toBe(1);
    expect(value(json, 'slotctl_cyrus_restarts_total', { slot: 's01-m1' })).toBe(2);
    expect(value(json, 'slotctl_cleanup_runs_total', { slot: 's01-m1', outcome: 'ok' })).toBe(1);
    expect(value(json, 'slotctl_cleanup_runs_total', { slot: 's01-m1', outcome: 'failed' })).toBe(1);
    expect(value(json, 'slotctl_cleanup_runs_total', { slot: 's02-m1', outcome: 'failed' })).toBe(1);
    // freed bytes never go down (a run during deliveries may measure more waiting after than before)
    expect(value(json, 'slotctl_cleanup_freed_bytes_total', { slot: 's01-m1' })).toBe(1_000_000);
    // the duration of both runs of s01-m1; the refused run of s02-m1 has none
    const hist = samples(json, 'slotctl_cleanup_duration_seconds');
    const of = (slot: string, metric: string) => json.find((f) => f.name === 'slotctl_cleanup_duration_seconds')!.values.filter((v) => v.labels.slot === slot && (v as { metricName?: string }).metricName === metric);
    expect(of('s01-m1', 'slotctl_cleanup_duration_seconds_count')[0]!.value).toBe(2);
    expect(of('s01-m1', 'slotctl_cleanup_duration_seconds_sum')[0]!.value).toBe(15.5);
    expect(of('s01-m1', 'slotctl_cleanup_duration_seconds_bucket').find((v) => v.labels.le === 5)!.value).toBe(1);
    expect(of('s01-m1', 'slotctl_cleanup_duration_seconds_bucket').find((v) => v.labels.le === 15)!.value).toBe(2);
    expect(hist.some((s) => s.labels.slot === 's02-m1')).toBe(false);
  });

  it('shows no state before the agent has one (a scrape during its start)', async () => {
    const json = await new AgentMetrics().json();
    expect(value(json, 'slotctl_agent_connected')).toBe(0);
    expect(samples(json, 'slotctl_slot_role')).toEqual([]);
    expect(samples(json, 'slotctl_partition_used_bytes')).toEqual([]);
  });

  it('every family is slotctl_ and the text exposition has its TYPE lines', async () => {
    const m = withView({});
    const json = await m.json();
    expect(json.map((f) => f.name).filter((n) => !n.startsWith('slotctl_'))).toEqual([]);
    expect(m.contentType).toMatch(/^text\/plain/);
    const types = Object.fromEntries(json.map((f) => [f.name, f.type]));
    expect(types).toMatchObject({ slotctl_fence_actions_total: 'counter', slotctl_cleanup_duration_seconds: 'histogram', slotctl_slot_role: 'gauge', slotctl_agent_lease_remaining_seconds: 'gauge' });
    expect((await m.metrics()).split('\n')).toContain('# TYPE slotctl_cleanup_duration_seconds histogram');
  });
});

describe('cleanup counted where it ends', () => {
  it('counts a refused cleanup (slot not running) as failed, without a duration', async () => {
    const counted: unknown[] = [];
    const job = {
      s: { name: 's01-m1', lifecycle: 'stopped', layout: {} } as unknown as SlotSupervisor,
      d: { requests: [] },
      id: 'op-1',
      log: undefined,
      services: { metrics: { cleanupRan: (slot: string, run: unknown) => counted.push({ slot, run }) } },
    } as unknown as RequestJob;
    const report = await cleanup.run(job);
    expect(report?.ok).toBe(false);
    expect(counted).toEqual([{ slot: 's01-m1', run: { ok: false, seconds: undefined, freedBytes: 0 } }]);
  });
});
