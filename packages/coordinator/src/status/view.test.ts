import { describe, expect, it } from 'vitest';
import type { MachineRow } from '../db/rows.js';
import { buildClusterView } from './view.js';
import { slot } from '../operations/rows.fixture.js';

const machine = (name: string): MachineRow => ({ name, address: `10.0.0.${name.slice(1)}`, disks: [], drained: false, state: 'up', stateSince: '2026-12-05T09:00:00.000Z', lastHeartbeat: '2026-12-05T09:10:00.000Z', agentVersion: '0.1.0', slotCapacity: 8, rack: '', retiredAt: '', slotIps: [] });

describe('status of a machine heard through a partner', () => {
  it('says up via the partner, as a warning that names what it means', () => {
    const view = buildClusterView({ machines: [machine('m1'), machine('m3')], stores: [], slots: [], connected: new Set(['m3']), fenced: new Set(), relayed: new Map([['m1', 'm3']]) });
    expect(view.machines.find((m) => m.name === 'm1')).toMatchObject({ state: 'up', connected: false, relayedVia: 'm3' });
    expect(view.machines.find((m) => m.name === 'm3')).toMatchObject({ relayedVia: '' });
    expect(view.problems).toEqual([expect.stringMatching(/^machine m1 is up via m3: cut from the coordinator/)]);
    expect(view.healthy).toBe(false);
  });

  it('says only "not connected" for a machine heard by nobody', () => {
    const view = buildClusterView({ machines: [machine('m1')], stores: [], slots: [], connected: new Set(), fenced: new Set() });
    expect(view.problems).toEqual(['machine m1: agent not connected']);
  });
});

describe('status of a store whose replica is being moved', () => {
  it('shows the slot being moved in beside the replica, not as a problem', () => {
    const store = { name: 's01', serviceIp: '10.0.9.1', masterSlot: 's01-m1', replicaSlot: 's01-m2', epoch: 6 };
    const serving = (role: string) => ({ observedState: 'SERVING', observedRole: role, epochApplied: 6, reportedAt: '2026-12-05T09:10:00.000Z' });
    const slots = [slot('s01-m1', 'm1', serving('MASTER')), slot('s01-m2', 'm2', serving('REPLICA')), slot('s01-m3', 'm3', { ...serving('REPLICA'), seeding: 'mv-1' })];
    const view = buildClusterView({ machines: [machine('m1'), machine('m2'), machine('m3')], stores: [store], slots, connected: new Set(['m1', 'm2', 'm3']), fenced: new Set() });
    expect(view.stores[0]!.moving?.name).toBe('s01-m3');
    expect(view.stores[0]!.replica?.name).toBe('s01-m2');
    expect(view.stores[0]!.health).toBe('ok');
    const after = buildClusterView({ machines: [machine('m1'), machine('m3')], stores: [{ ...store, replicaSlot: 's01-m3', epoch: 7 }], slots: [slots[0]!, { ...slots[2]!, seeding: '' }], connected: new Set(['m1', 'm3']), fenced: new Set() });
    expect(after.stores[0]!.moving).toBeUndefined();
  });
});
