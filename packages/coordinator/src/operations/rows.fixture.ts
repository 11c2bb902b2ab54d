// Hand-made database rows for the pure rule-table tests, and a kind's context for the action tests.
import { createLogger } from '@slotctl/shared';
import { EMPTY_BACKLOG, type MachineRow, type SlotRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import type { KindContext } from './framework/kind.js';

export const T0 = Date.parse('2026-11-29T10:00:00.000Z');
export const iso = (ms: number) => new Date(T0 + ms).toISOString();

export const machine = (name: string, over: Partial<MachineRow> = {}): MachineRow => ({
  name, address: '10.0.0.1', disks: [], drained: false, state: 'up', stateSince: iso(0), lastHeartbeat: iso(0), agentVersion: '1', slotCapacity: 18, rack: '', retiredAt: '', slotIps: [], ...over,
});

export const slot = (name: string, machineName: string, over: Partial<SlotRow> = {}): SlotRow => ({
  name, store: 's01', machine: machineName, ip: '10.0.1.1', dataPath: '/d', metaPath: '/m', observedState: 'SERVING', observedRole: 'MASTER', epochApplied: 4,
  backlog: EMPTY_BACKLOG, lastError: '', reportedAt: iso(0), adminStopped: false, pid: 1, stateReason: '', crashes: 0, recentLog: [],
  opHold: '', syncConfirmedEpoch: 0, recoveryHold: '', quarantine: undefined,
  requests: {}, results: {}, recoverListening: '', seeding: '', cleanupStartedAt: '', cleanupRequested: '', cleanupNextAt: '', partitions: [], ...over,
});


/** A kind's context over a real database for action tests: nothing pushed anywhere unless `over` says so. */
export const kindContext = (storage: Storage, over: Partial<KindContext> = {}): KindContext => ({
  storage,
  push: () => undefined,
  connected: () => new Set(),
  log: createLogger('test', { level: 'silent' }),
  graceUntil: () => 0,
  seedLimits: { cluster: 2, perMachine: 1 },
  maxSwitchovers: 1,
  startSwitchover: () => undefined,
  cancelQuietly: () => undefined,
  ...over,
});
