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

/** The slot's requests as the contract's fields (a request absent: its fields empty). */
function requestFields(row: PlacedSlotRow, cleanup: CleanupPolicy) {
  const { replay, check, 'recover-listen': listen, 'recover-push': push, seed, cleanup: expire } = row.requests;
  return {
    replayOp: replay?.id ?? '',
    checkOp: check?.id ?? '',
    checkMailboxes: check?.mailboxes ?? [],
    recoverListen: listen?.id ?? '',
    recoverOp: push?.id ?? '',
    recoverTarget: push ? (row.recoverTargetIp ?? '') : '',
    recoverTargetSlot: push?.targetSlot ?? '',
    recoverTargetMachine: push ? (row.recoverTargetMachine ?? '') : '',
    recoverMailboxes: push?.mailboxes ?? [],
    // only a master copies to a new replica
    seedOp: row.masterSlot === row.name ? (seed?.id ?? '') : '',
    // a cleanup request carries the retentions it runs with
    cleanupOp: expire?.id ?? '',
    cleanupExpunged: expire ? cleanup.expunged : '',
    cleanupDeleted: expire ? cleanup.deleted : '',
    cleanupDuplicates: expire ? cleanup.duplicates : '',
    cleanupTimeoutS: expire ? Math.ceil(cleanup.timeoutMs / 1000) : 0,
  };
}

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
      peerMachine: row.peerMachine ?? '',
      ...requestFields(row, cleanup),
    }))
    .sort((a, b) => (a.slot < b.slot ? -1 : 1));
  // partners: every machine sharing a store with this one
  const partners = new Map<string, string>();
  for (const row of rows) if (row.machine === machine && row.peerMachine && row.peerAddress) partners.set(row.peerMachine, row.peerAddress);
  const peers: PeerAgent[] = [...partners].sort(([a], [b]) => (a < b ? -1 : 1)).map(([m, a]) => ({ machine: m, address: a }));
  const version = createHash('sha256').update(JSON.stringify({ slots, address, peers })).digest('hex').slice(0, 16);
  return { version, machine, slots, address, peers };
}
