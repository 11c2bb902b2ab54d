// Pure: how a desired state applies to what this agent has applied before. Level-triggered: the same desired state
// twice gives UNCHANGED for every slot. A late message with an older epoch (or a role change without a new epoch) is
// refused, so it cannot undo a newer decision.
import { assertIp, assertName, assertPath, describeError, type DesiredSlot__Output, type SlotApply } from '@slotctl/shared';

export interface AppliedSlot {
  store: string;
  role: 'MASTER' | 'REPLICA';
  epoch: number;
  slotIp: string;
  serviceIp: string;
  peerSlot: string;
  peerIp: string;
  dataPath: string;
  metaPath: string;
  /** A master whose replica is being moved: the new replica's address, replicated to as well ('' = none). */
  moveTargetIp?: string;
}

export type AppliedSlots = Readonly<Record<string, AppliedSlot>>;

export interface ApplyPlan {
  results: SlotApply[];
  next: Record<string, AppliedSlot>;
  /** Slots applied before that the desired state no longer names. */
  removed: string[];
}

/** Checks every name, address and path before any of it can reach the file system or a command line. */
export function validateDesiredSlot(d: DesiredSlot__Output): AppliedSlot {
  const what = `desired slot "${d.slot}"`;
  assertName(d.slot, `${what}: slot`);
  assertName(d.store, `${what}: store`);
  if (d.role !== 'MASTER' && d.role !== 'REPLICA') throw new Error(`${what}: role ${d.role} is neither MASTER nor REPLICA`);
  if (!Number.isSafeInteger(d.epoch) || d.epoch < 1) throw new Error(`${what}: epoch ${d.epoch} is not a positive integer`);
  assertIp(d.slotIp, `${what}: slot_ip`);
  assertIp(d.serviceIp, `${what}: service_ip`);
  if (d.peerSlot) assertName(d.peerSlot, `${what}: peer_slot`);
  if (d.peerIp) assertIp(d.peerIp, `${what}: peer_ip`);
  if (d.moveTargetIp) assertIp(d.moveTargetIp, `${what}: move_target_ip`);
  if (d.moveTargetIp && d.role !== 'MASTER') throw new Error(`${what}: move_target_ip on a ${d.role}: only a master replicates to a moved replica`);
  assertPath(d.dataPath, `${what}: data_path`);
  assertPath(d.metaPath, `${what}: meta_path`);
  return {
    store: d.store,
    role: d.role,
    epoch: d.epoch,
    slotIp: d.slotIp,
    serviceIp: d.serviceIp,
    peerSlot: d.peerSlot,
    peerIp: d.peerIp,
    dataPath: d.dataPath,
    metaPath: d.metaPath,
    ...(d.moveTargetIp ? { moveTargetIp: d.moveTargetIp } : {}),
  };
}

function same(a: AppliedSlot, b: AppliedSlot): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)] as (keyof AppliedSlot)[]);
  return [...keys].every((k) => (a[k] ?? '') === (b[k] ?? ''));
}

export function planApply(applied: AppliedSlots, desired: readonly DesiredSlot__Output[]): ApplyPlan {
  const next: Record<string, AppliedSlot> = {};
  const results: SlotApply[] = [];
  const named = new Set<string>();
  for (const d of desired) {
    named.add(d.slot);
    const before = applied[d.slot];
    let wanted: AppliedSlot;
    try {
      wanted = validateDesiredSlot(d);
    } catch (err) {
      results.push({ slot: d.slot, result: 'REFUSED', detail: describeError(err) });
      if (before) next[d.slot] = before;
      continue;
    }
    if (before && wanted.epoch < before.epoch) {
      results.push({ slot: d.slot, result: 'REFUSED', detail: `stale epoch ${wanted.epoch}: epoch ${before.epoch} is already applied` });
      next[d.slot] = before;
    } else if (before && wanted.epoch === before.epoch && wanted.role !== before.role) {
      results.push({ slot: d.slot, result: 'REFUSED', detail: `role ${before.role} -> ${wanted.role} without a new epoch (still ${before.epoch})` });
      next[d.slot] = before;
    } else if (before && same(before, wanted)) {
      results.push({ slot: d.slot, result: 'UNCHANGED', detail: '' });
      next[d.slot] = before;
    } else {
      const detail = before ? `${before.role}@${before.epoch} -> ${wanted.role}@${wanted.epoch}` : `new: ${wanted.role}@${wanted.epoch}`;
      results.push({ slot: d.slot, result: 'CHANGED', detail });
      next[d.slot] = wanted;
    }
  }
  const removed = Object.keys(applied).filter((slot) => !named.has(slot));
  return { results, next, removed };
}
