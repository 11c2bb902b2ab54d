import { describe, expect, it } from 'vitest';
import type { PlacedSlotRow } from '../db/rows.js';
import { desiredStateFor } from './desired-state.js';

const row = (over: Partial<PlacedSlotRow>): PlacedSlotRow => ({
  name: 's01-m1',
  store: 's01',
  machine: 'm1',
  ip: '127.0.21.1',
  dataPath: '/srv/m1/s01/data',
  metaPath: '/srv/m1/s01/meta',
  serviceIp: '127.0.20.1',
  seedOp: '',
  cleanupOp: '',
  masterSlot: 's01-m1',
  epoch: 1,
  peerSlot: 's01-m2',
  peerIp: '127.0.22.1',
  peerMachine: 'm2',
  peerAddress: '127.0.10.2',
  adminStopped: 0,
  startGeneration: 0,
  replayOp: '',
  opHold: '',
  checkOp: '',
  checkMailboxes: '[]',
  recoveryHold: '',
  recoverListen: '',
  recoverOp: '',
  recoverTargetIp: null,
  recoverTargetSlot: '',
  recoverTargetMachine: null,
  recoverMailboxes: '[]',
  ...over,
});

describe('desired state of a machine', () => {
  it('gives each slot its role from the store row, sorted, with the peer to replicate with', () => {
    const state = desiredStateFor('m1', '127.0.10.1', [row({ name: 's02-m1', store: 's02', masterSlot: 's02-m2', peerSlot: 's02-m2' }), row({})]);
    expect(state.slots?.map((s) => [s.slot, s.role, s.peerSlot])).toEqual([
      ['s01-m1', 'MASTER', 's01-m2'],
      ['s02-m1', 'REPLICA', 's02-m2'],
    ]);
    // the partners, for the failsafe: every machine sharing a store, once
    expect(state.peers).toEqual([{ machine: 'm2', address: '127.0.10.2' }]);
    expect(state.address).toBe('127.0.10.1');
  });

  it('has a version that depends only on the content', () => {
    const a = desiredStateFor('m1', '127.0.10.1', [row({}), row({ name: 's02-m1', store: 's02' })]);
    const b = desiredStateFor('m1', '127.0.10.1', [row({ name: 's02-m1', store: 's02' }), row({})]);
    expect(a.version).toBe(b.version);
    expect(desiredStateFor('m1', '127.0.10.1', [row({ epoch: 2 })]).version).not.toBe(desiredStateFor('m1', '127.0.10.1', [row({})]).version);
  });
});
