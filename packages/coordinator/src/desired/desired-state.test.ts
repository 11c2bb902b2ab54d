import { describe, expect, it } from 'vitest';
import type { PlacedSlotRow, SlotRequests } from '../db/rows.js';
import { desiredStateFor } from './desired-state.js';

const row = (over: Partial<PlacedSlotRow>): PlacedSlotRow => ({
  name: 's01-m1',
  store: 's01',
  machine: 'm1',
  ip: '127.0.21.1',
  dataPath: '/srv/m1/s01/data',
  metaPath: '/srv/m1/s01/meta',
  serviceIp: '127.0.20.1',
  masterSlot: 's01-m1',
  epoch: 1,
  peerSlot: 's01-m2',
  peerIp: '127.0.22.1',
  peerMachine: 'm2',
  peerAddress: '127.0.10.2',
  adminStopped: 0,
  startGeneration: 0,
  opHold: '',
  recoveryHold: '',
  requests: {},
  recoverTargetIp: null,
  recoverTargetMachine: null,
  moveTargetIp: null,
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

  it('names a replica being moved in on the master only, and changes the version with it', () => {
    const moving = desiredStateFor('m1', '127.0.10.1', [row({ moveTargetIp: '127.0.23.1' })]);
    expect(moving.slots![0]!.moveTargetIp).toBe('127.0.23.1');
    expect(moving.version).not.toBe(desiredStateFor('m1', '127.0.10.1', [row({})]).version);
    expect(desiredStateFor('m1', '127.0.10.1', [row({ masterSlot: 's01-m2', moveTargetIp: '127.0.23.1' })]).slots![0]).not.toHaveProperty('moveTargetIp');
  });

  it('has a version that depends only on the content', () => {
    const a = desiredStateFor('m1', '127.0.10.1', [row({}), row({ name: 's02-m1', store: 's02' })]);
    const b = desiredStateFor('m1', '127.0.10.1', [row({ name: 's02-m1', store: 's02' }), row({})]);
    expect(a.version).toBe(b.version);
    expect(desiredStateFor('m1', '127.0.10.1', [row({ epoch: 2 })]).version).not.toBe(desiredStateFor('m1', '127.0.10.1', [row({})]).version);
  });

  it("carries where the machine's disks are mounted, sorted; none leaves the version as it was", () => {
    const without = desiredStateFor('m1', '127.0.10.1', [row({})]);
    expect(without.diskPaths ?? []).toEqual([]);
    expect(desiredStateFor('m1', '127.0.10.1', [row({})], undefined, []).version).toBe(without.version);
    const withDisks = desiredStateFor('m1', '127.0.10.1', [row({})], undefined, ['/srv/d1', '/srv/d0']);
    expect(withDisks.diskPaths).toEqual(['/srv/d0', '/srv/d1']);
    expect(withDisks.version).not.toBe(without.version);
  });

  it('carries each request the slot holds, and nothing of those it does not', () => {
    const cleanup = { expunged: '7d', deleted: '7d', duplicates: '3d', timeoutMs: 1500 };
    expect(desiredStateFor('m1', '127.0.10.1', [row({})], cleanup).slots![0]!.requests).toEqual([]);
    const requests: SlotRequests = {
      replay: { kind: 'replay', id: 'sw-1' },
      check: { kind: 'check', id: 'sw-1', mailboxes: ['user.ann'] },
      'recover-listen': { kind: 'recover-listen', id: 'rc-1' },
      'recover-push': { kind: 'recover-push', id: 'rc-1', targetSlot: 's01-m2', mailboxes: ['user.bob'] },
      seed: { kind: 'seed', id: 'rr-1' },
      cleanup: { kind: 'cleanup', id: 'cl-1' },
    };
    const all = desiredStateFor('m1', '127.0.10.1', [row({ requests, recoverTargetIp: '127.0.22.1', recoverTargetMachine: 'm2' })], cleanup).slots![0]!;
    expect(all.requests).toEqual([
      { id: 'sw-1', replay: {} },
      { id: 'sw-1', check: { mailboxes: ['user.ann'] } },
      { id: 'rc-1', recoverListen: {} },
      { id: 'rc-1', recoverPush: { target: '127.0.22.1', targetSlot: 's01-m2', targetMachine: 'm2', mailboxes: ['user.bob'] } },
      { id: 'rr-1', seed: {} },
      { id: 'cl-1', cleanup: { expunged: '7d', deleted: '7d', duplicates: '3d', timeoutS: 2 } },
    ]);
    // only a master copies to a new replica
    expect(desiredStateFor('m1', '127.0.10.1', [row({ requests, masterSlot: 's01-m2' })], cleanup).slots![0]!.requests?.map((r) => Object.keys(r)[1])).not.toContain('seed');
  });
});
