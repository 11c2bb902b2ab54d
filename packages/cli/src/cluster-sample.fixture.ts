// A realistic cluster in trouble for the tests of slotctl's text output (status and the list commands at a
// terminal's width): six machines, one down and one being drained, twelve stores, backlogs, a stall, problems and
// running operations. Times are relative to NOW; the tests fake the clock to it.
import type { AtRiskInfo__Output as AtRiskInfo, CleanupStatusRow, DiskStatusRow, MachineInfo__Output as MachineInfo, OperationInfo__Output as OperationInfo, SlotInfo__Output as SlotInfo, StatusReply__Output, StoreInfo__Output as StoreInfo } from '@slotctl/shared';

export const NOW = Date.parse('2026-11-29T10:00:00.000Z');
const before = (ms: number) => new Date(NOW - ms).toISOString();

function machine(name: string, i: number, over: Partial<MachineInfo> = {}): MachineInfo {
  return {
    name,
    address: `10.20.0.${11 + i}`,
    state: 'up',
    stateSince: before(3 * 86_400_000 + i * 3_600_000),
    lastHeartbeat: before(400 + i * 90),
    agentVersion: '0.1.0',
    connected: true,
    drained: false,
    disks: [],
    slots: 4,
    masters: 2,
    fanOut: 2,
    peers: [],
    slotCapacity: 18,
    rack: `r${(i % 3) + 1}`,
    retired: false,
    relayedVia: '',
    ...over,
  };
}

function slot(store: string, machineName: string, role: 'MASTER' | 'REPLICA', ip: string, over: Partial<SlotInfo> = {}): SlotInfo {
  return {
    name: `${store}-${machineName}`,
    machine: machineName,
    ip,
    dataPath: `/srv/hdd0/${store}/data`,
    metaPath: `/srv/ssd0/${store}/meta`,
    state: 'SERVING',
    role,
    epochApplied: 3,
    backlog: { files: 0, bytes: 0, mailboxes: 0, oldestChangeAgeMs: 0, stalled: false, stallReason: '', mailboxNames: [], unloggedSince: '' },
    lastError: '',
    reportedAt: before(800),
    store,
    desiredRole: role,
    storeEpoch: 3,
    stopped: false,
    recentLog: [],
    stateReason: '',
    pid: 4242,
    crashesInWindow: 0,
    replay: null,
    ...over,
  };
}

function operation(over: Partial<OperationInfo>): OperationInfo {
  return { id: '', kind: 'switchover', store: '', machine: '', state: 'running', step: '', error: '', createdAt: before(95_000), updatedAt: before(12_000), paramsJson: '{}', resultJson: '{}', steps: [], parent: '', cancelRequested: false, children: [], waiting: '', ...over };
}

/**
 * Six machines (the fourth down, the third being drained), twelve stores paired round the ring, the down machine's
 * stores failed over (no replica), backlogs on a few masters, one of them stalled, a drain and a switchover running.
 * `names` gives the machines their names: m1… as in the README, or longer host names.
 */
export function sampleStatus(names: readonly string[] = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']): StatusReply__Output {
  const [, , drained, down] = names;
  const machines = names.map((n, i) =>
    n === down
      ? machine(n, i, { state: 'down', stateSince: before(7 * 60_000 + 13_000), lastHeartbeat: before(7 * 60_000 + 15_000), connected: false, agentVersion: '', masters: 0, fanOut: 0 })
      : machine(n, i, { drained: n === drained, masters: n === drained ? 1 : 3, fanOut: 2, peers: [names[(i + 1) % names.length]!, names[(i + 2) % names.length]!] }),
  );
  const stores: StoreInfo[] = [];
  for (let i = 0; i < 12; i++) {
    const name = `s${String(i + 1).padStart(2, '0')}`;
    let master = names[i % names.length]!;
    let replica = names[(i + 1) % names.length]!;
    const failedOver = master === down;
    if (failedOver) [master, replica] = [replica, master];
    const backlogs: Record<string, Partial<SlotInfo['backlog']>> = {
      s02: { files: 3, bytes: 18_342, mailboxes: 2, oldestChangeAgeMs: 4_100 },
      s05: { files: 142, bytes: 9_812_000, mailboxes: 37, oldestChangeAgeMs: 7 * 60_000 + 13_000 },
      s09: { files: 1_208, bytes: 88_000_000, mailboxes: 311, oldestChangeAgeMs: 2 * 3_600_000 + 14 * 60_000, stalled: true, stallReason: 'sync_client exited 75: connection refused by 10.20.3.9' },
    };
    const masterSlot = slot(name, master, 'MASTER', `10.20.${1 + (i % 2)}.${i + 1}`, {
      epochApplied: failedOver ? 4 : 3,
      storeEpoch: failedOver ? 4 : 3,
      backlog: { files: 0, bytes: 0, mailboxes: 0, oldestChangeAgeMs: 0, stalled: false, stallReason: '', mailboxNames: [], unloggedSince: '', ...backlogs[name] },
    });
    const replicaSlot = slot(name, replica, 'REPLICA', `10.20.${2 - (i % 2)}.${i + 1}`, replica === down ? { state: '', reportedAt: before(7 * 60_000) } : {});
    const health = replica === down ? 'degraded' : backlogs[name]?.stalled ? 'degraded' : 'ok';
    stores.push({ name, epoch: failedOver ? 4 : 3, serviceIp: `10.20.0.${100 + i}`, master: masterSlot, replica: replicaSlot, moving: null, health, problems: [] });
  }
  const problems = [
    `machine ${down} is down since ${before(7 * 60_000 + 13_000)}`,
    ...stores.filter((s) => s.replica!.machine === down).map((s) => `store ${s.name}: replica slot ${s.replica!.name} on ${down}: machine is down since ${before(7 * 60_000 + 13_000)}`),
    `store s09: master slot s09-${stores[8]!.master!.machine} on ${stores[8]!.master!.machine}: replication stalled (1208 log file(s)): sync_client exited 75: connection refused by 10.20.3.9`,
    `data partition /srv/hdd0/s03/data of s03-${names[2]} on ${names[2]} is 86 % full (warn); 12884901888 bytes wait for cleanup (slotctl cleanup run --slot s03-${names[2]})`,
  ];
  const operations = [
    operation({ id: 'dr-5c0e91aa', kind: 'drain', machine: drained!, step: 'switchovers', createdAt: before(95_000), updatedAt: before(12_000), waiting: `1 switchover(s) running (s07), 1 store(s) waiting for a turn (--parallel 2); 1 moved, 0 not moved` }),
    operation({ id: 'sw-1f3b7c20', kind: 'switchover', store: 's07', parent: 'dr-5c0e91aa', step: 'replay', createdAt: before(20_000), updatedAt: before(6_000), waiting: `s07-${names[2]} to report its leftover sync logs replayed (last report: STOPPED)` }),
  ];
  return { healthy: false, problems, machines, stores, coordinatorId: 'co-1', startedAt: before(86_400_000), operations, backend: 'etcd /slotctl/', term: 7 };
}

export const TARGET = '10.20.0.5:7400';

/** Machines named like hosts rather than m1…: longer names, longer slot names. */
export const HOST_NAMES = ['imap-fra-01', 'imap-fra-02', 'imap-ber-01', 'imap-ber-02', 'imap-ams-01', 'imap-ams-02'];

/** Every slot of the sample, masters first; one stopped by an operator, one running an old epoch. */
export function sampleSlots(status = sampleStatus()): SlotInfo[] {
  const slots = status.stores.flatMap((s) => [s.master!, s.replica!]);
  slots[3] = { ...slots[3]!, stopped: true, state: 'STOPPED' };
  slots[6] = { ...slots[6]!, role: 'MASTER', epochApplied: 2 };
  return slots;
}

export function sampleOperations(status = sampleStatus()): OperationInfo[] {
  return [
    ...status.operations,
    operation({ id: 'sw-0b9d44e1', kind: 'switchover', store: 's03', state: 'failed', step: 'rolled-back', createdAt: before(3_600_000), updatedAt: before(3_540_000), error: 'replay of s03-m3 failed: sync_client exited 75 (connection refused by 10.20.2.3), rolled back: the old master serves again' }),
    operation({ id: 'rb-77aa0c13', kind: 'rebalance', state: 'succeeded', step: 'done', createdAt: before(86_400_000), updatedAt: before(86_340_000) }),
    operation({ id: 'fo-3e21c9d0', kind: 'failover', store: 's04', state: 'succeeded', step: 'done', createdAt: before(7 * 60_000), updatedAt: before(7 * 60_000 - 2_310) }),
  ];
}

export function sampleAtRisk(): AtRiskInfo[] {
  const record = (store: string, slot: string, machine: string, op: string, files: number, mailboxes: number, state: string): AtRiskInfo => ({
    id: 1, store, slot, machine, op, epoch: 4, createdAt: before(7 * 60_000), files, bytes: files * 4_096, mailboxCount: mailboxes, oldestChangeAgeMs: files ? 95_000 : 0, reportedAt: before(7 * 60_000 + 1_000), state, mailboxes: [], resultJson: '{}', closedAt: '', unloggedSince: '',
  });
  return [record('s04', 's04-m4', 'm4', 'fo-3e21c9d0', 17, 6, 'open'), record('s10', 's10-m4', 'm4', 'fo-9a0c2b77', 0, 0, 'open'), record('s22', 's22-m4', 'm4', 'fo-11f0e5a2', 3, 1, 'nothing-lost')];
}

export function sampleCleanup(): CleanupStatusRow[] {
  const row = (slot: string, machine: string, role: string, over: Partial<CleanupStatusRow> = {}): CleanupStatusRow => ({
    slot, machine, store: slot.split('-')[0]!, role, disks: ['hdd0', 'ssd0'], running: null, waitingBytes: 3_221_225_472, requested: '', nextAt: '2026-11-30T02:13:00.000Z',
    last: { op: 'cl-1', startedAt: before(8 * 3_600_000), finishedAt: before(8 * 3_600_000 - 412_000), ms: 412_000, ok: true, exitCode: 0, freedBytes: 1_288_490_188, error: '', tail: [] },
    ...over,
  });
  return [
    row('s01-m1', 'm1', 'master'),
    row('s01-m2', 'm2', 'replica', { running: { op: 'cl-9', since: before(200_000), requestedBy: 'operator alice' } }),
    row('s02-m2', 'm2', 'master', { last: { op: 'cl-2', startedAt: before(9 * 3_600_000), finishedAt: before(9 * 3_600_000 - 5_000), ms: 5_000, ok: false, exitCode: 75, freedBytes: 0, error: 'cyr_expire: cannot open mailbox list', tail: [] } }),
    row('s02-m3', 'm3', 'replica', { requested: 'operator bob', last: null }),
  ];
}

export function sampleDisks(): DiskStatusRow[] {
  const row = (machine: string, slot: string, role: string, used: number, over: Partial<DiskStatusRow> = {}): DiskStatusRow => ({
    machine, slot, role, path: `/srv/${role === 'meta' ? 'ssd0' : 'hdd0'}/${slot.split('-')[0]}/${role}`, totalBytes: 16e12, freeBytes: 16e12 * (1 - used / 100), usedPercent: used, inodesUsedPercent: Math.round(used / 3), deletedBytes: 2_147_483_648, expungedBytes: 10_737_418_240, level: used >= 90 ? 'critical' : used >= 80 ? 'warn' : 'ok', measuredAt: before(120_000), error: '', ...over,
  });
  return [row('m1', 's01-m1', 'data', 41), row('m1', 's01-m1', 'meta', 12), row('m3', 's03-m3', 'data', 86), row('m4', 's04-m4', 'data', 0, { level: 'unknown', error: 'statfs /srv/hdd0/s04/data: no such file or directory' })];
}
