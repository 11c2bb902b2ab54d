// Pure: the whole desired state of one machine, computed from database rows. Its version is a digest of the
// content, so equal states have equal versions and re-sending one changes nothing on the agent.
import { createHash } from 'node:crypto';
import type { DesiredSlot, DesiredState, PeerAgent } from '@slotctl/shared';
import type { PlacedSlotRow } from '../db/rows.js';

export interface CleanupPolicy {
  expunged: string;
  deleted: string;
  duplicates: string;
  timeoutMs: number;
}

const NO_CLEANUP: CleanupPolicy = { expunged: '', deleted: '', duplicates: '', timeoutMs: 0 };

export function desiredStateFor(machine: string, address: string, rows: readonly PlacedSlotRow[], cleanup: CleanupPolicy = NO_CLEANUP): DesiredState {
  const slots: DesiredSlot[] = rows
    .filter((row) => row.machine === machine)
    .map((row) => ({
      slot: row.name,
      store: row.store,
      role: row.masterSlot === row.name ? ('MASTER' as const) : ('REPLICA' as const),
      epoch: row.epoch,
      slotIp: row.ip,
      serviceIp: row.serviceIp,
      peerSlot: row.peerSlot ?? '',
      peerIp: row.peerIp ?? '',
      dataPath: row.dataPath,
      metaPath: row.metaPath,
      // stopped by an operator, held by an operation (a switchover's old master), or a returning old master
      // waiting for the recovery of what it had not replicated
      stopped: row.adminStopped !== 0 || row.opHold !== '' || row.recoveryHold !== '',
      startGeneration: row.startGeneration,
      replayOp: row.replayOp,
      checkOp: row.checkOp,
      checkMailboxes: row.checkOp ? (JSON.parse(row.checkMailboxes) as string[]) : [],
      peerMachine: row.peerMachine ?? '',
      recoverListen: row.recoverListen,
      recoverOp: row.recoverOp,
      recoverTarget: row.recoverOp ? (row.recoverTargetIp ?? '') : '',
      recoverTargetSlot: row.recoverOp ? row.recoverTargetSlot : '',
      recoverTargetMachine: row.recoverOp ? (row.recoverTargetMachine ?? '') : '',
      recoverMailboxes: row.recoverOp ? (JSON.parse(row.recoverMailboxes) as string[]) : [],
      // only a master copies to a new replica
      seedOp: row.masterSlot === row.name ? row.seedOp : '',
      // a cleanup request carries the retentions it runs with
      cleanupOp: row.cleanupOp,
      cleanupExpunged: row.cleanupOp ? cleanup.expunged : '',
      cleanupDeleted: row.cleanupOp ? cleanup.deleted : '',
      cleanupDuplicates: row.cleanupOp ? cleanup.duplicates : '',
      cleanupTimeoutS: row.cleanupOp ? Math.ceil(cleanup.timeoutMs / 1000) : 0,
    }))
    .sort((a, b) => (a.slot < b.slot ? -1 : 1));
  // partners: every machine sharing a store with this one
  const partners = new Map<string, string>();
  for (const row of rows) if (row.machine === machine && row.peerMachine && row.peerAddress) partners.set(row.peerMachine, row.peerAddress);
  const peers: PeerAgent[] = [...partners].sort(([a], [b]) => (a < b ? -1 : 1)).map(([m, a]) => ({ machine: m, address: a }));
  const version = createHash('sha256').update(JSON.stringify({ slots, address, peers })).digest('hex').slice(0, 16);
  return { version, machine, slots, address, peers };
}
