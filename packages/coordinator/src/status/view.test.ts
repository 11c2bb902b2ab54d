import { describe, expect, it } from 'vitest';
import type { MachineRow } from '../db/rows.js';
import { buildClusterView } from './view.js';

const machine = (name: string): MachineRow => ({ name, address: `10.0.0.${name.slice(1)}`, disks: [], drained: false, state: 'up', stateSince: '2026-12-05T09:00:00.000Z', lastHeartbeat: '2026-12-05T09:10:00.000Z', agentVersion: '0.1.0', slotCapacity: 8, rack: '', retiredAt: '' });

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
