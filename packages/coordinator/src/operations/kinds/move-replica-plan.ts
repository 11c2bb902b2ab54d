// `slotctl store move-replica STORE --to M --ip IP`: what a replica move would do and why it would be refused, and
// the operation it starts (move-replica.ts runs it). Refused when the target cannot hold the slot for good: drained,
// full (slot count, declared disk sizes at the planner's reservation, or a measured partition over the warning
// threshold), in the master's rack, without a disk of the class the replica's partitions need; or when the store is
// not whole (its replica still being seeded) or busy.
import { ConflictError, NotFoundError, assertIp, assertName, assertPath, firstFree } from '@slotctl/shared';
import { DEFAULT_SLOT_SIZE, freeSlots } from '@slotctl/planner';
import { OperationConflict, type DiskRow, type MachineRow, type PartitionRow, type SlotRow } from '../../db/rows.js';
import { usedPercent } from '../../cleanup/schedule.js';
import { readCleanupConfig, CLEANUP_SETTING } from '../../cleanup/config.js';
import { clusterFromRows } from '../../placement/from-rows.js';
import { createOperation, type KindContext } from '../framework/kind.js';
import { BEFORE_SWITCH, MOVE_REPLICA, MOVE_REPLICA_DEFAULTS, moveProblems, type MoveReplicaParams } from './move-replica.js';
import { pathOnMachine } from './rereplicate.js';

export interface MoveReplicaRequest {
  store: string;
  to: string;
  /** The new slot's address (its own: the old replica keeps its address until the switch); '' = the first free one of the target's slot_ips. */
  ip: string;
  /** '' = the old replica's place under the target's disk of the same name (or class). */
  dataPath?: string;
  metaPath?: string;
  /** A child of a machine add, evacuation or fan-out: that operation's id, and the reason its event gives. */
  parent?: string;
  reason?: string;
}

export interface MoveReplicaPreview {
  params: MoveReplicaParams;
  problems: string[];
  plan: string[];
}

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
const diskOf = (path: string, disks: readonly DiskRow[]) => [...disks].filter((d) => inside(path, d.path)).sort((a, b) => b.path.length - a.path.length)[0];
/** What a slot may grow by beyond what it measures before a disk is judged to hold it: a fifth more. */
export const PLACEMENT_HEADROOM = 0.2;

/** The file system figures of the target's disk that holds `path`, from the freshest partition measured on it. */
function diskFigures(path: string, disks: readonly DiskRow[], slotsThere: readonly SlotRow[]): (PartitionRow & { disk: string }) | undefined {
  const disk = diskOf(path, disks);
  if (!disk) return undefined;
  const seen = slotsThere.flatMap((s) => s.partitions).filter((p) => !p.error && p.totalBytes > 0 && inside(p.path, disk.path));
  const last = seen.sort((a, b) => (a.measuredAt < b.measuredAt ? 1 : -1))[0];
  return last && { ...last, disk: disk.name };
}

/** What the store's copy takes of one partition role, as measured on its slots (the larger of the two). */
function storeNeeds(storeSlots: readonly SlotRow[], role: 'data' | 'meta'): { bytes: number; inodes: number } {
  const parts = storeSlots.flatMap((s) => s.partitions).filter((p) => p.role === role && !p.error);
  return { bytes: Math.max(0, ...parts.map((p) => p.usedBytes ?? 0)), inodes: Math.max(0, ...parts.map((p) => p.usedInodes ?? 0)) };
}

const gb = (b: number) => (b >= 1e9 ? `${(b / 1e9).toFixed(1)} GB` : `${(b / 1e6).toFixed(1)} MB`);

/**
 * Whether the target's disks hold the store's copy with room to spare: its measured bytes and inodes per partition
 * (the larger of its two slots), a fifth more (PLACEMENT_HEADROOM), and its expected growth (cluster file) on the
 * data partition, added to what each disk uses now, must stay under the warning threshold. A disk with no slot on it
 * yet has no measurement: the planner's reservation of declared sizes judges it (targetProblems).
 */
/** A copy headed for a machine: its store's slots (their measured sizes), its expected growth, its paths there. */
export interface IncomingCopy {
  storeSlots: readonly SlotRow[];
  growthBytes: number;
  dataPath: string;
  metaPath: string;
}

export function roomProblems(input: IncomingCopy & { target: string; disks: readonly DiskRow[]; slotsThere: readonly SlotRow[]; warnPct: number; alsoComing?: readonly IncomingCopy[] }): string[] {
  const out: string[] = [];
  const byDisk = new Map<string, { figures: PartitionRow & { disk: string }; bytes: number; inodes: number; growth: number; mine: boolean }>();
  // this copy, and the others already headed for the same machine (running moves, or planned before it): a disk must
  // hold them all (a copy under way is counted whole: its part on disk already is counted twice, on the safe side)
  for (const [i, copy] of [input, ...(input.alsoComing ?? [])].entries()) {
    for (const [role, path] of [['data', copy.dataPath], ['meta', copy.metaPath]] as const) {
      const figures = diskFigures(path, input.disks, input.slotsThere);
      if (!figures) continue;
      const need = storeNeeds(copy.storeSlots, role);
      const growth = role === 'data' ? copy.growthBytes : 0;
      const entry = byDisk.get(figures.disk) ?? { figures, bytes: 0, inodes: 0, growth: 0, mine: false };
      entry.bytes += need.bytes * (1 + PLACEMENT_HEADROOM) + growth;
      entry.inodes += need.inodes * (1 + PLACEMENT_HEADROOM);
      entry.growth += growth;
      if (i === 0) entry.mine = true;
      byDisk.set(figures.disk, entry);
    }
  }
  for (const [disk, { figures: f, bytes, inodes, growth, mine }] of byDisk) {
    if (!mine) continue;
    const now = usedPercent(f);
    if (Math.max(now.bytes, now.inodes) >= input.warnPct) {
      const what = now.bytes >= now.inodes ? 'bytes' : 'inodes';
      out.push(`disk ${disk} on ${input.target} is ${Math.round(Math.max(now.bytes, now.inodes))}% full (${what}; the warning threshold is ${input.warnPct}%): free space there or choose another machine`);
      continue;
    }
    const after = usedPercent({ totalBytes: f.totalBytes, freeBytes: f.freeBytes - bytes, totalInodes: f.totalInodes, freeInodes: f.freeInodes - inodes });
    if (Math.max(after.bytes, after.inodes) >= input.warnPct) {
      const copies = input.alsoComing?.length ? `the store's copy and ${input.alsoComing.length} other(s) headed there` : "the store's copy";
      const what = after.bytes >= after.inodes ? `bytes: ${gb(f.totalBytes - f.freeBytes)} used of ${gb(f.totalBytes)}, ${copies} ${gb(bytes)}` : `inodes: ${f.totalInodes - f.freeInodes} used of ${f.totalInodes}, ${copies} ${Math.round(inodes)}`;
      out.push(`disk ${disk} on ${input.target} would be ${Math.round(Math.max(after.bytes, after.inodes))}% full with the store's copy (${what}, measured${growth ? ` with ${gb(growth)} expected growth` : ''} and ${PLACEMENT_HEADROOM * 100}% headroom; the warning threshold is ${input.warnPct}%): choose another machine or free space there`);
    }
  }
  return out;
}

/**
 * For a planner choosing among machines (evacuate): whether `target`'s disks hold a copy of `store` moved there from
 * its slot on `from` (paths as a move would choose them), beside the copies already placed there by this plan and by
 * moves running now. Reads the database once; `place` records a choice made.
 */
export function moveRoomChecker(ctx: KindContext): { problem: (store: string, from: string, target: string) => string | undefined; place: (store: string, from: string, target: string) => void } {
  const { storage } = ctx;
  const allSlots = storage.slots.list();
  const machines = new Map(storage.machines.list().map((m) => [m.name, m]));
  const growth = new Map(storage.stores.list().map((s) => [s.name, s.growthBytes ?? 0]));
  const warnPct = readCleanupConfig(storage.settings.get(CLEANUP_SETTING)).warnPct;
  const incoming = incomingCopies(ctx, allSlots, growth);
  const copyOf = (store: string, from: string, target: string): IncomingCopy | undefined => {
    const slot = allSlots.find((s) => s.store === store && s.machine === from);
    const fromMachine = machines.get(from);
    const to = machines.get(target);
    if (!slot || !fromMachine || !to) return undefined;
    return { storeSlots: allSlots.filter((s) => s.store === store), growthBytes: growth.get(store) ?? 0, dataPath: pathOnMachine(slot.dataPath, fromMachine.disks, to.disks, 'hdd'), metaPath: pathOnMachine(slot.metaPath, fromMachine.disks, to.disks, 'ssd') };
  };
  return {
    problem: (store, from, target) => {
      const copy = copyOf(store, from, target);
      const to = machines.get(target);
      if (!copy || !to) return undefined;
      return roomProblems({ ...copy, target, disks: to.disks, slotsThere: allSlots.filter((s) => s.machine === target), warnPct, alsoComing: incoming.get(target) ?? [] })[0];
    },
    place: (store, from, target) => {
      const copy = copyOf(store, from, target);
      if (copy) incoming.set(target, [...(incoming.get(target) ?? []), copy]);
    },
  };
}

/** Per target machine, the copies running replica moves are bringing there that have not switched yet. */
function incomingCopies(ctx: KindContext, allSlots: readonly SlotRow[], growth: ReadonlyMap<string, number>, except?: string): Map<string, IncomingCopy[]> {
  const out = new Map<string, IncomingCopy[]>();
  for (const o of ctx.storage.operations.running()) {
    if (o.kind !== 'move-replica' || !o.store || o.store === except || !(o.step === 'preflight' || BEFORE_SWITCH.includes(o.step))) continue;
    const p = o.params as unknown as Partial<MoveReplicaParams>;
    if (!p.targetMachine || !p.dataPath || !p.metaPath) continue;
    out.set(p.targetMachine, [...(out.get(p.targetMachine) ?? []), { storeSlots: allSlots.filter((s) => s.store === o.store && s.name !== p.target), growthBytes: growth.get(o.store) ?? 0, dataPath: p.dataPath, metaPath: p.metaPath }]);
  }
  return out;
}

/** The target's problems as a home for the replica for good (the ones a running move does not re-check). */
function targetProblems(ctx: KindContext, inUse: ReadonlyMap<string, string>, master: MachineRow, old: SlotRow, target: MachineRow, dataPath: string, metaPath: string, ip: string, slotName: string): string[] {
  const { storage } = ctx;
  const out: string[] = [];
  const oldMachine = storage.machines.get(old.machine)!;
  if (target.retiredAt) out.push(`machine ${target.name} is retired`);
  if (target.rack && master.rack && target.rack === master.rack) out.push(`machine ${target.name} stands in rack ${target.rack}, as the master ${master.name} does: a store's two slots stand in two racks`);
  // a disk of the class each partition needs
  for (const [what, path] of [['data', old.dataPath], ['meta', old.metaPath]] as const) {
    const from = diskOf(path, oldMachine.disks);
    if (from && target.disks.length && !target.disks.some((d) => d.name === from.name || d.class === from.class)) out.push(`machine ${target.name} has no ${from.class} disk for the ${what} partition (on ${old.machine} it is on ${from.name}, ${from.class})`);
  }
  const allSlots = storage.slots.list();
  const slotsThere = allSlots.filter((s) => s.machine === target.name);
  // full: slot count, declared disk sizes at the planner's reservation
  const cluster = clusterFromRows({ machines: storage.machines.list(), stores: storage.stores.list(), slots: allSlots });
  const planned = cluster.machines.find((m) => m.name === target.name);
  if (planned && freeSlots({ ...planned, down: false }, slotsThere.length, DEFAULT_SLOT_SIZE) < 1) {
    out.push(`machine ${target.name} is full: ${slotsThere.length} slot(s) of ${target.slotCapacity}${target.disks.some((d) => d.size) ? `, or its disks cannot reserve ${DEFAULT_SLOT_SIZE.dataBytes / 1e9} GB data and ${DEFAULT_SLOT_SIZE.metaBytes / 1e9} GB meta more` : ''}`);
  }
  // full: what the agents measured (the disk, the store's copy, the copies other moves are bringing), against the
  // warning threshold
  const growth = new Map(storage.stores.list().map((s) => [s.name, s.growthBytes ?? 0]));
  out.push(...roomProblems({
    target: target.name, disks: target.disks, slotsThere, storeSlots: allSlots.filter((x) => x.store === old.store), growthBytes: growth.get(old.store) ?? 0,
    dataPath, metaPath, warnPct: readCleanupConfig(storage.settings.get(CLEANUP_SETTING)).warnPct,
    alsoComing: incomingCopies(ctx, allSlots, growth, old.store).get(target.name) ?? [],
  }));
  if (target.disks.length) for (const path of [dataPath, metaPath]) if (!diskOf(path, target.disks)) out.push(`${path} is under none of ${target.name}'s disks (${target.disks.map((d) => d.path).join(', ')})`);
  // as cluster apply judges partitions: none may be, hold or lie inside another on the machine
  const overlaps = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
  if (overlaps(dataPath, metaPath)) out.push(`the new slot's data path ${dataPath} and meta path ${metaPath} overlap: give other paths with --data-path and --meta-path`);
  for (const s of slotsThere) {
    for (const mine of [dataPath, metaPath]) {
      const theirs = [s.dataPath, s.metaPath].find((other) => overlaps(mine, other));
      if (theirs) out.push(`${mine} overlaps ${theirs} of slot ${s.name} on ${target.name}: give other paths with --data-path and --meta-path`);
    }
  }
  if (allSlots.some((s) => s.name === slotName)) out.push(`a slot named ${slotName} exists already`);
  const taken = inUse.get(ip);
  if (taken) out.push(`address ${ip} is in use (${taken}): give the new slot an address of its own`);
  return out;
}

/**
 * Every address in use, with what uses it: slots, stores' service addresses, machines, and moves asked for whose slot
 * does not exist yet (waiting for a seed slot: taken all the same).
 */
function addressesInUse(ctx: KindContext): Map<string, string> {
  const { storage } = ctx;
  const out = new Map<string, string>();
  for (const o of storage.operations.running()) {
    const p = o.params as unknown as Partial<MoveReplicaParams>;
    if (o.kind === 'move-replica' && p.ip) out.set(p.ip, `the replica move ${o.id} of ${o.store}`);
  }
  for (const m of storage.machines.list()) out.set(m.address, m.name);
  for (const s of storage.stores.list()) out.set(s.serviceIp, s.name);
  for (const s of storage.slots.list()) out.set(s.ip, s.name);
  return out;
}

/** What a move of `store`'s replica to `to` would do, and what stops it now; throws on a name that does not exist. */
export function previewMoveReplica(ctx: KindContext, req: MoveReplicaRequest): MoveReplicaPreview {
  const { storage } = ctx;
  assertName(req.store, 'store');
  assertName(req.to, '--to');
  if (req.ip) assertIp(req.ip, '--ip');
  if (req.dataPath) assertPath(req.dataPath, '--data-path');
  if (req.metaPath) assertPath(req.metaPath, '--meta-path');
  const store = storage.stores.get(req.store);
  if (!store) throw new NotFoundError(`store "${req.store}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
  const target = storage.machines.get(req.to);
  if (!target) throw new NotFoundError(`machine "${req.to}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
  const master = storage.slots.get(store.masterSlot)!;
  const old = storage.slots.get(store.replicaSlot)!;
  const masterMachine = storage.machines.get(master.machine)!;
  const oldMachine = storage.machines.get(old.machine)!;
  const inUse = addressesInUse(ctx);
  const ip = req.ip || firstFree(target.slotIps, new Set(inUse.keys()));
  const params: MoveReplicaParams = {
    master: master.name,
    masterMachine: master.machine,
    oldReplica: old.name,
    oldMachine: old.machine,
    target: `${store.name}-${target.name}`,
    targetMachine: target.name,
    ip: ip ?? '',
    dataPath: req.dataPath || pathOnMachine(old.dataPath, oldMachine.disks, target.disks, 'hdd'),
    metaPath: req.metaPath || pathOnMachine(old.metaPath, oldMachine.disks, target.disks, 'ssd'),
    timeoutMs: MOVE_REPLICA_DEFAULTS.timeoutMs,
    verifyTimeoutMs: MOVE_REPLICA_DEFAULTS.verifyTimeoutMs,
  };
  const problems: string[] = [];
  if (!ip) {
    problems.push(
      target.slotIps.length
        ? `machine ${target.name} has no free address left in its slot_ips (${target.slotIps.join(', ')}): give one with --ip, or declare more in the cluster file`
        : `the new slot needs an address of its own: give one with --ip, or declare addresses for new slots on ${target.name} in the cluster file (slot_ips: [FIRST-LAST]) and apply it`,
    );
  }
  if (target.name === master.machine) problems.push(`machine ${target.name} holds the master ${master.name}: the replica must be on another machine`);
  else if (target.name === old.machine) problems.push(`machine ${target.name} already holds the replica ${old.name}`);
  else problems.push(...targetProblems(ctx, inUse, masterMachine, old, target, params.dataPath, params.metaPath, params.ip, params.target));
  if (old.seeding) problems.push(`the replica ${old.name} is still being seeded (${old.seeding}): the store is not whole yet; let that finish first`);
  const running = storage.operations.running().find((o) => o.store === store.name);
  if (running) problems.push(`store ${store.name} is busy with operation ${running.id} (${running.kind})`);
  problems.push(...moveProblems({ params, store, master, masterMachine, targetMachine: target, connected: ctx.connected() }));
  const plan = [
    `add ${params.target} on ${target.name} (${params.ip}; data ${params.dataPath}, meta ${params.metaPath}) beside ${old.name} on ${old.machine}; ${master.name} replicates to both (epoch + 1, no restart)`,
    `copy every user of ${master.name} to ${params.target} (sync_client -u), while ${old.name} keeps replicating`,
    `compare every mailbox: the new slot summarized 1.5 s after the master must hold each as the master did or newer (uniqueid, UIDVALIDITY, last UID, modseq), again every 2 s for at most ${MOVE_REPLICA_DEFAULTS.verifyTimeoutMs / 1000} s`,
    `switch: ${params.target} becomes ${store.name}'s replica (epoch + 1); ${old.name} stops, releases its address, and keeps its files on ${old.machine}`,
    `copy every user once more and compare again (changes made by sessions begun before the second channel)`,
  ];
  return { params, problems, plan };
}

/** Starts the move (a ConflictError when something stops it, naming what). */
export function startMoveReplica(ctx: KindContext, req: MoveReplicaRequest): string {
  const { params, problems } = previewMoveReplica(ctx, req);
  if (problems.length) throw new ConflictError(`cannot move ${req.store}'s replica to ${req.to}: ${problems.join('; ')}`, { hint: `see what it would do: slotctl store move-replica ${req.store} --to ${req.to}${req.ip ? ` --ip ${req.ip}` : ''} --dry-run` });
  const epoch = ctx.storage.stores.get(req.store)!.epoch;
  return createOperation(
    ctx,
    MOVE_REPLICA,
    { store: req.store, machine: params.targetMachine, ...(req.parent ? { parent: req.parent } : {}), step: 'preflight', params: { ...params }, epoch, reason: req.reason ?? `replica move of ${req.store}: ${params.oldReplica} (${params.oldMachine}) -> ${params.target} (${params.targetMachine}) requested` },
    (running) => new ConflictError(`store ${req.store} is busy: ${new OperationConflict(running).message}`, { hint: `wait for it (slotctl operations show ${running.id} --wait)` }),
  );
}
