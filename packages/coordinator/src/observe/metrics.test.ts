// The coordinator's metrics from a leader's snapshot (pure: a fake snapshot, the real registry and exposition, read
// back by a parser): state as gauges, what happened as counters from the committed events, nothing while following.
import { describe, expect, it } from 'vitest';
import { parseExposition, samples, value } from '../../../../tools/exposition.js';
import type { EventRow, OperationRow } from '../db/rows.js';
import type { ClusterView } from '../status/view.js';
import { CoordinatorMetrics, labelValue, type LeaderSnapshot } from './metrics.js';

const T0 = Date.parse('2026-12-04T10:00:00Z');
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

function op(id: string, kind: string, createdAt: number): OperationRow {
  return { id, kind, store: 's1', machine: null, state: 'running', step: 'x', stepSince: iso(createdAt), params: {}, result: {}, error: '', parent: null, cancelRequested: false, createdAt: iso(createdAt), updatedAt: iso(createdAt), waiting: '' } as OperationRow;
}

function event(id: number, kind: string, at: number, opId: string | null = null): EventRow {
  return { id, at: iso(at), kind, machine: null, store: null, slot: null, epoch: null, op: opId, reason: '', data: null, actor: null };
}

class FakeLeader {
  events: EventRow[] = [event(1, 'machine.up', 0), event(2, 'operation.succeeded', 1, 'old')];
  ops = new Map<string, OperationRow>();
  view: ClusterView = {
    healthy: false,
    problems: ['machine m3 is down'],
    machines: [{ name: 'm1', state: 'up' }, { name: 'm2', state: 'up', relayedVia: 'm1' }, { name: 'm3', state: 'down' }] as ClusterView['machines'],
    stores: [
      { name: 's1', epoch: 4, health: 'ok', master: { machine: 'm1' } },
      { name: 's2', epoch: 7, health: 'degraded', master: { machine: 'm2' } },
    ] as ClusterView['stores'],
  };

  snapshot(): LeaderSnapshot {
    return {
      term: 3,
      view: this.view,
      running: [...this.ops.values()].filter((o) => o.state === 'running'),
      atRiskOpen: 2,
      agentsConnected: 2,
      eventsAfter: (afterId, limit) => this.events.filter((e) => e.id > afterId).slice(0, limit),
      operation: (id) => this.ops.get(id),
      lastEventId: () => this.events.at(-1)?.id ?? 0,
    };
  }
}

describe('coordinator metrics', () => {
  it('shows the state of the cluster the leader sees, one series per machine and store', async () => {
    const m = new CoordinatorMetrics();
    const leader = new FakeLeader();
    m.setSource(() => leader.snapshot());
    const f = parseExposition(await m.metrics());
    expect(value(f, 'slotctl_coordinator_leader')).toBe(1);
    expect(value(f, 'slotctl_coordinator_term')).toBe(3);
    expect(value(f, 'slotctl_machine_state', { machine: 'm3', state: 'down' })).toBe(1);
    expect(samples(f, 'slotctl_machine_state', { machine: 'm3' })).toHaveLength(1);
    expect(value(f, 'slotctl_machine_relayed', { machine: 'm2' })).toBe(1);
    expect(value(f, 'slotctl_machine_relayed', { machine: 'm1' })).toBe(0);
    expect(value(f, 'slotctl_machines', { state: 'up' })).toBe(2);
    expect(value(f, 'slotctl_store_health', { store: 's2', health: 'degraded' })).toBe(1);
    expect(value(f, 'slotctl_stores', { health: 'ok' })).toBe(1);
    expect(value(f, 'slotctl_store_epoch', { store: 's2' })).toBe(7);
    expect(value(f, 'slotctl_store_master', { store: 's1', machine: 'm1' })).toBe(1);
    expect(value(f, 'slotctl_at_risk_open')).toBe(2);
    expect(value(f, 'slotctl_agents_connected')).toBe(2);
    expect(f.get('slotctl_store_epoch')?.help).toMatch(/epoch/);

    // a switchover moves the master: the old series goes, it does not linger beside the new one
    leader.view = { ...leader.view, stores: [{ name: 's1', epoch: 5, health: 'ok', master: { machine: 'm2' } }] as ClusterView['stores'] };
    const g = parseExposition(await m.metrics());
    expect(samples(g, 'slotctl_store_master', { store: 's1' })).toEqual([{ name: 'slotctl_store_master', labels: { store: 's1', machine: 'm2' }, value: 1 }]);
    expect(value(g, 'slotctl_store_epoch', { store: 's1' })).toBe(5);
  });

  it('counts what was committed after it started leading, operations with their kind, outcome and duration', async () => {
    const m = new CoordinatorMetrics();
    const leader = new FakeLeader();
    m.setSource(() => leader.snapshot());
    await m.metrics(); // the first look only marks: history is not counted again by a new leader
    leader.ops.set('op1', op('op1', 'switchover', 10));
    leader.ops.set('op2', op('op2', 'failover', 20));
    leader.events.push(
      event(3, 'operation.started', 10, 'op1'),
      event(4, 'operation.succeeded', 14, 'op1'),
      event(5, 'operation.started', 20, 'op2'),
      event(6, 'operation.failed', 50, 'op2'),
      event(7, 'cleanup.done', 51),
      event(8, 'cleanup.failed', 52),
    );
    const f = parseExposition(await m.metrics());
    expect(value(f, 'slotctl_events_total', { kind: 'machine.up' })).toBeUndefined();
    expect(value(f, 'slotctl_events_total', { kind: 'operation.started' })).toBe(2);
    expect(value(f, 'slotctl_operations_total', { kind: 'switchover', outcome: 'succeeded' })).toBe(1);
    expect(value(f, 'slotctl_operations_total', { kind: 'failover', outcome: 'failed' })).toBe(1);
    expect(value(f, 'slotctl_failovers_total')).toBe(1);
    expect(value(f, 'slotctl_cleanup_runs_total', { outcome: 'ok' })).toBe(1);
    expect(value(f, 'slotctl_cleanup_runs_total', { outcome: 'failed' })).toBe(1);
    const of = { kind: 'switchover', outcome: 'succeeded' };
    expect(value(f, 'slotctl_operation_duration_seconds', of, '_sum')).toBe(4);
    expect(value(f, 'slotctl_operation_duration_seconds', { ...of, le: '5' }, '_bucket')).toBe(1);
    expect(value(f, 'slotctl_operation_duration_seconds', { ...of, le: '2' }, '_bucket')).toBe(0);
    // counted once: the next scrape adds nothing
    const again = parseExposition(await m.metrics());
    expect(value(again, 'slotctl_operations_total', { kind: 'switchover', outcome: 'succeeded' })).toBe(1);
  });

  it('counts from the moment a coordinator starts leading, before its first scrape', async () => {
    const m = new CoordinatorMetrics();
    const leader = new FakeLeader();
    leader.ops.set('f1', op('f1', 'failover', 5));
    m.setSource(() => leader.snapshot(), 2);
    leader.events.push(event(3, 'operation.started', 5, 'f1'));
    const f = parseExposition(await m.metrics());
    expect(value(f, 'slotctl_failovers_total')).toBe(1);
    expect(value(f, 'slotctl_events_total', { kind: 'machine.up' })).toBeUndefined();
  });

  it('says it follows and shows no cluster state while another coordinator leads', async () => {
    const m = new CoordinatorMetrics();
    m.heartbeatAcknowledged(0.003);
    // a fence counts when it begins: not again while it lasts (nor at a reconnect that says it still is)
    m.fencedState('m2', true);
    m.fencedState('m2', true);
    m.fencedState('m1', false);
    const f = parseExposition(await m.metrics());
    expect(value(f, 'slotctl_coordinator_leader')).toBe(0);
    expect(samples(f, 'slotctl_store_epoch')).toHaveLength(0);
    expect(samples(f, 'slotctl_machine_state')).toHaveLength(0);
    expect(value(f, 'slotctl_heartbeat_ack_seconds', {}, '_count')).toBe(1);
    expect(value(f, 'slotctl_fences_total', { machine: 'm2' })).toBe(1);
  });

  it('escapes label values as the text format wants them, and they read back as they were', async () => {
    expect(labelValue('plain')).toBe('plain');
    expect(labelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const m = new CoordinatorMetrics();
    const leader = new FakeLeader();
    leader.view = { ...leader.view, stores: [{ name: 'odd"store\\', epoch: 1, health: 'ok', master: { machine: 'm1' } }] as ClusterView['stores'] };
    m.setSource(() => leader.snapshot(), 0);
    const f = parseExposition(await m.metrics());
    expect(value(f, 'slotctl_store_epoch', { store: 'odd"store\\' })).toBe(1);
  });
});
