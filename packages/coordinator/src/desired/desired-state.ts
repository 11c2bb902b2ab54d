// Pure: the whole desired state of one machine, computed from database rows. Its version is a digest of the
// content, so equal states have equal versions and re-sending one changes nothing on the agent.
import { createHash } from 'node:crypto';
import type { DesiredSlot, DesiredState, PeerAgent, SlotRequest } from '@slotctl/shared';
import type { PlacedSlotRow } from '../db/rows.js';

export interface CleanupPolicy {
  expunged: string;
  deleted: string;
  duplicates: string;
  timeoutMs: number;
}

const NO_CLEANUP: CleanupPolicy = { expunged: '', deleted: '', duplicates: '', timeoutMs: 0 };

/** The slot's requests as the contract lists them, in a fixed order (equal states, equal versions). */
function requestList(row: PlacedSlotRow, cleanup: CleanupPolicy): SlotRequest[] {
  const { replay, check, 'recover-listen': listen, 'recover-push': push, seed, cleanup: expire } = row.requests;
  const out: SlotRequest[] = [];
  if (replay) out.push({ id: replay.id, replay: {} });
  if (check) out.push({ id: check.id, check: { mailboxes: check.mailboxes } });
  if (listen) out.push({ id: listen.id, recoverListen: {} });
  if (push) out.push({ id: push.id, recoverPush: { target: row.recoverTargetIp ?? '', targetSlot: push.targetSlot, targetMachine: row.recoverTargetMachine ?? '', mailboxes: push.mailboxes } });
  // only a master copies to a new replica
  if (seed && row.masterSlot === row.name) out.push({ id: seed.id, seed: seed.fullSpeed ? { fullSpeed: true } : {} });
  // a cleanup request carries the retentions it runs with
  if (expire) out.push({ id: expire.id, cleanup: { expunged: cleanup.expunged, deleted: cleanup.deleted, duplicates: cleanup.duplicates, timeoutS: Math.ceil(cleanup.timeoutMs / 1000) } });
  return out;
}

/** `diskPaths`: where the machine's declared disks are mounted; its agent refuses a slot path under none of them. */
export function desiredStateFor(machine: string, address: string, rows: readonly PlacedSlotRow[], cleanup: CleanupPolicy = NO_CLEANUP, diskPaths: readonly string[] = []): DesiredState {
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
      requests: requestList(row, cleanup),
      // only a master replicates to a replica being moved in; absent otherwise (versions as before the field)
      ...(row.moveTargetIp && row.masterSlot === row.name ? { moveTargetIp: row.moveTargetIp } : {}),
    }))
    .sort((a, b) => (a.slot < b.slot ? -1 : 1));
  // partners: every machine sharing a store with this one
  const partners = new Map<string, string>();
  for (const row of rows) if (row.machine === machine && row.peerMachine && row.peerAddress) partners.set(row.peerMachine, row.peerAddress);
  const peers: PeerAgent[] = [...partners].sort(([a], [b]) => (a < b ? -1 : 1)).map(([m, a]) => ({ machine: m, address: a }));
  const disks = [...diskPaths].sort();
  // a machine without disks keeps the version it had before disks were sent
  const version = createHash('sha256').update(JSON.stringify({ slots, address, peers, ...(disks.length ? { disks } : {}) })).digest('hex').slice(0, 16);
  return { version, machine, slots, address, peers, ...(disks.length ? { diskPaths: disks } : {}) };
}
