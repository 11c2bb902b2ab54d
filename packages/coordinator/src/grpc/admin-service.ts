// The Admin service that slotctl calls. Handlers are thin: parse the request, call storage or a pure view,
// answer. Named errors become gRPC statuses with their code and hint (see @slotctl/shared grpc-errors).
import type * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { ConflictError, LogThrottle, assertName, NotFoundError, ValidationError, isUserError, toGrpcError, type AdminHandlers, type AtRiskInfo, type Logger, type OperationInfo } from '@slotctl/shared';
import { applyCluster } from '../cluster/apply.js';
import { exportCluster } from '../cluster/export.js';
import type { AtRiskRow, OperationRow } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import type { Orchestrator } from '../operations/orchestrator.js';
import { buildClusterView, slotInfo } from '../status/view.js';
import { parseNewMachine, planAddMachine, planLayout, whatIf } from '@slotctl/planner';
import { clusterFromRows } from '../placement/from-rows.js';
import { cleanupStatus, diskStatus } from '../cleanup/view.js';
import { ADMIN_ACCESS, type AdminRpc, callerOf, mayCall, requireRole, roleNeeded, type Caller } from './roles.js';

export interface AdminDeps {
  storage: Storage;
  connected: () => ReadonlySet<string>;
  fenced: () => ReadonlySet<string>;
  /** Machines heard only through a partner's relay (Agent.Relay), with that partner. */
  relayed?: () => ReadonlyMap<string, string>;
  /** Called after a cluster apply changed the database, with the machines whose desired state may have changed. */
  onClusterChanged: (machines: string[]) => void;
  coordinatorId: string;
  startedAt: string;
  log: Logger;
  orchestrator: Orchestrator;
  /** Mutual TLS is on: callers are known by their certificates (otherwise every call is the insecure caller's). */
  secure: boolean;
  /** For status: where the state lives, and the leadership term (0: SQLite). */
  backend?: string;
  term?: number;
  /** Resolves once what a reply shows is durable (etcd backend); a reply never reports a change a crash could undo. */
  durable?: () => Promise<void>;
}

const MAX_OPERATIONS = 1000;

function operationInfo(storage: Storage, op: OperationRow, withChildren = true): OperationInfo {
  return {
    id: op.id,
    kind: op.kind,
    store: op.store ?? '',
    machine: op.machine ?? '',
    state: op.state,
    step: op.step,
    error: op.error,
    createdAt: op.createdAt,
    updatedAt: op.updatedAt,
    paramsJson: JSON.stringify(op.params),
    resultJson: JSON.stringify(op.result),
    parent: op.parent ?? '',
    cancelRequested: op.cancelRequested,
    waiting: op.waiting,
    steps: storage.events.ofOperation(op.id).map((e) => {
      const data = JSON.parse(e.data ?? '{}') as { to?: string; rule?: string };
      return { step: data.to ?? e.kind.replace('operation.', ''), at: e.at, rule: data.rule ?? '', reason: e.reason };
    }),
    children: withChildren ? storage.operations.children(op.id).map((c) => operationInfo(storage, c, false)) : [],
  };
}

/** What an audit event keeps of a request: its fields, long texts (a cluster file) by size only. */
function auditable(request: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((request ?? {}) as Record<string, unknown>)) {
    out[key] = typeof value === 'string' && value.length > 200 ? `<${value.length} characters>` : value;
  }
  return out;
}

/** Refused calls recorded (see unary). */
const refusals = new LogThrottle(60_000, 256);

/**
 * A unary Admin handler: the caller's role is checked before anything runs; a call that may change something runs
 * with its caller as the actor of every event it writes and is recorded by an `admin.call` event (a refused one by
 * `admin.refused`), so `slotctl events --who NAME` finds it and the operations it started.
 */
function unary<Req, Res>(deps: AdminDeps, name: AdminRpc, fn: (request: Req, caller: Caller) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const caller = callerOf(call, deps.secure);
    const role = roleNeeded(ADMIN_ACCESS[name], call.request);
    try {
      if (!mayCall(caller, role)) {
        // anyone who reaches the port can be refused: recorded once a minute per caller and call, not once per call
        // (each event is a write, an fsync with synchronous = FULL)
        if (refusals.allow(`${caller.name}|${name}`, Date.now())) {
          deps.log.warn({ rpc: name, caller: caller.name, callerRole: caller.role, need: role }, 'admin call refused: role');
          deps.storage.events.append({ kind: 'admin.refused', actor: caller.name, reason: `${caller.name} (${caller.role || 'no role'}) may not call ${name}: needs role ${role}`, data: { rpc: name, role: caller.role, need: role } });
        }
        requireRole(caller, role, name);
      }
      if (role === 'reader') return reply(deps, name, fn(call.request, caller), callback);
      const out = deps.storage.events.as(caller.name, () => {
        const out = fn(call.request, caller);
        // a cluster apply refused for its problems writes nothing at all, not even this (all or nothing)
        if ((out as { applied?: boolean }).applied !== false) {
          deps.storage.events.append({ kind: 'admin.call', reason: `${caller.name} (${caller.role}) called ${name}`, data: { rpc: name, role: caller.role, request: auditable(call.request) } });
        }
        return out;
      });
      deps.log.info({ rpc: name, caller: caller.name, callerRole: caller.role }, 'admin call');
      reply(deps, name, out, callback);
    } catch (err) {
      const status = toGrpcError(err);
      if (!isUserError(err)) deps.log.error({ err, rpc: name, caller: caller.name }, 'admin call failed (a bug)');
      callback(status as grpc.ServiceError, null);
    }
  };
}

/** Answers once what the reply shows is durable; if it never will be (leadership lost), the caller is told to retry. */
function reply<Res>(deps: AdminDeps, name: AdminRpc, value: Res, callback: grpc.sendUnaryData<Res>): void {
  if (!deps.durable) return callback(null, value);
  deps.durable().then(
    () => callback(null, value),
    (err: unknown) => {
      deps.log.warn({ rpc: name, err: (err as Error).message }, 'admin call not answered: its changes could not be made durable');
      callback({ code: 14, details: `this coordinator is not the leader any more: it lost its leadership before ${name} was durable (${(err as Error).message}); ask again: the new leader answers` } as grpc.ServiceError, null);
    },
  );
}

const MAX_EVENTS = 10_000;

const INSECURE_PROBLEM = 'the coordinator runs without TLS (--insecure): anyone who reaches its port can call every RPC and say hello as any agent; restart it with certificates (slotctl pki --help)';

/** Running without TLS is a problem of the cluster: status says so first and is not healthy. */
function withSecurity<V extends { healthy: boolean; problems: string[] }>(view: V, secure: boolean): V {
  return secure ? view : { ...view, healthy: false, problems: [INSECURE_PROBLEM, ...view.problems] };
}

function atRiskInfo(r: AtRiskRow): AtRiskInfo {
  return {
    id: r.id,
    store: r.store,
    slot: r.slot,
    machine: r.machine,
    op: r.op,
    epoch: r.epoch,
    createdAt: r.createdAt,
    files: r.backlog.files,
    bytes: r.backlog.bytes,
    mailboxCount: r.backlog.mailboxes,
    oldestChangeAgeMs: r.backlog.oldestChangeAgeMs,
    reportedAt: r.backlog.reportedAt ?? '',
    unloggedSince: r.backlog.unloggedSince ?? '',
    state: r.state,
    mailboxes: r.mailboxes,
    resultJson: JSON.stringify(r.result),
    closedAt: r.closedAt ?? '',
  };
}

/** An optional machine filter must name a machine of the cluster. */
function requireMachine(storage: Storage, machine: string): void {
  if (machine && !storage.machines.get(machine)) throw new NotFoundError(`machine "${machine}" is not in the cluster`, { hint: 'list machines with `slotctl machine list`' });
}

/** The cluster as `slotctl status` shows it (machines, stores, problems worst first), from the database now. */
export function clusterView(deps: Pick<AdminDeps, 'storage' | 'connected' | 'fenced' | 'relayed' | 'orchestrator'>) {
  return buildClusterView({ machines: deps.storage.machines.list(), stores: deps.storage.stores.list(), slots: deps.storage.slots.list(), connected: deps.connected(), fenced: deps.fenced(), relayed: deps.relayed?.(), disks: deps.orchestrator.cleanup.config() });
}

/** The Status reply: what `slotctl status` and the status page show. */
export function clusterStatus(deps: AdminDeps, view = clusterView(deps)) {
  return {
    ...withSecurity(view, deps.secure),
    coordinatorId: deps.coordinatorId,
    startedAt: deps.startedAt,
    backend: deps.backend ?? '',
    term: deps.term ?? 0,
    operations: deps.storage.operations.running().map((op) => operationInfo(deps.storage, op, false)),
  };
}

export function adminHandlers(deps: AdminDeps): AdminHandlers {
  const view = () => clusterView(deps);
  return {
    Status: unary(deps, 'Status', () => clusterStatus(deps)),
    ListMachines: unary(deps, 'ListMachines', () => ({ machines: view().machines })),
    ListStores: unary(deps, 'ListStores', () => ({ stores: view().stores })),
    ListEvents: unary(deps, 'ListEvents', (request) => {
      if (request.since && Number.isNaN(Date.parse(request.since))) throw new ValidationError(`since "${request.since}" is not a time`);
      const events = deps.storage.events.list({
        since: request.since ? new Date(request.since).toISOString() : undefined,
        afterId: request.afterId || undefined,
        store: request.store || undefined,
        machine: request.machine || undefined,
        who: request.who || undefined,
        limit: Math.min(request.limit || 100, MAX_EVENTS),
      });
      return {
        events: events.map((e) => ({
          id: e.id,
          at: e.at,
          kind: e.kind,
          machine: e.machine ?? '',
          store: e.store ?? '',
          slot: e.slot ?? '',
          epoch: e.epoch ?? 0,
          op: e.op ?? '',
          reason: e.reason,
          dataJson: e.data ?? '',
          actor: e.actor ?? '',
        })),
      };
    }),
    ListSlots: unary(deps, 'ListSlots', (request) => {
      const stores = new Map(deps.storage.stores.list().map((s) => [s.name, s]));
      const slots = deps.storage.slots.list().filter((s) => !request.machine || s.machine === request.machine);
      return { slots: slots.map((s) => slotInfo(s, stores.get(s.store))!) };
    }),
    SetSlotRun: unary(deps, 'SetSlotRun', (request) => {
      const slot = deps.storage.slots.get(request.slot);
      if (!slot) throw new NotFoundError(`no slot "${request.slot}"`, { hint: 'slotctl slot list shows the slots' });
      const busy = deps.storage.operations.running().find((o) => o.store === slot.store);
      if (busy) throw new ConflictError(`store ${slot.store} is busy with operation ${busy.id} (${busy.kind}, at step ${busy.step})`, { hint: `wait for it (slotctl operations show ${busy.id} --wait) or cancel it` });
      deps.storage.slots.setStopped(slot.name, !request.run, request.reason || (request.run ? 'operator started the slot' : 'operator stopped the slot'));
      deps.onClusterChanged([slot.machine]);
      const after = deps.storage.slots.get(slot.name)!;
      return { slot: slotInfo(after, deps.storage.stores.get(after.store)) };
    }),
    ReplaySlot: unary(deps, 'ReplaySlot', (request) => {
      const slot = deps.storage.slots.get(request.slot);
      if (!slot) throw new NotFoundError(`no slot "${request.slot}"`, { hint: 'slotctl slot list shows the slots' });
      if (!slot.adminStopped) {
        throw new ConflictError(`slot ${slot.name} is not stopped: replay runs only while its cyrmaster is stopped`, {
          hint: `slotctl slot stop ${slot.name} first (its store serves no mail meanwhile if it is the master)`,
        });
      }
      const op = `replay-${randomUUID()}`;
      deps.storage.requests.put(slot.name, { kind: 'replay', id: op }, 'operator asked for the leftover sync logs to be replayed');
      deps.onClusterChanged([slot.machine]);
      return { op };
    }),
    Switchover: unary(deps, 'Switchover', (request) => {
      const options = { timeoutMs: request.timeoutMs || undefined, maxBacklogMailboxes: request.maxBacklogMailboxes || undefined };
      const preview = deps.orchestrator.previewSwitchover(request.store, options);
      if (request.dryRun) return { dryRun: true, problems: preview.problems, plan: preview.plan };
      const op = deps.orchestrator.startSwitchover(request.store, options);
      return { dryRun: false, operation: operationInfo(deps.storage, op), problems: op.state === 'refused' ? op.error.split('; ') : [], plan: preview.plan };
    }),
    MoveReplica: unary(deps, 'MoveReplica', (request) => {
      const req = { store: request.store, to: request.toMachine, ip: request.ip, dataPath: request.dataPath, metaPath: request.metaPath };
      const preview = deps.orchestrator.previewMoveReplica(req);
      if (request.dryRun) return { dryRun: true, problems: preview.problems, plan: preview.plan };
      const op = deps.orchestrator.startMoveReplica(req);
      return { dryRun: false, operation: operationInfo(deps.storage, op), problems: [], plan: preview.plan };
    }),
    DrainMachine: unary(deps, 'DrainMachine', (request) => {
      const preview = deps.orchestrator.previewDrain(request.machine);
      if (request.dryRun) return { dryRun: true, plan: preview.plan, problems: [] };
      const op = deps.orchestrator.startDrain(request.machine, { parallel: request.parallel || undefined, timeoutMs: request.timeoutMs || undefined });
      return { dryRun: false, operation: operationInfo(deps.storage, op), plan: preview.plan, problems: [] };
    }),
    UndrainMachine: unary(deps, 'UndrainMachine', (request) => {
      deps.orchestrator.undrain(request.machine);
      return { machine: view().machines.find((m) => m.name === request.machine) };
    }),
    ListOperations: unary(deps, 'ListOperations', (request) => ({
      operations: deps.storage.operations
        .list({ all: request.all, limit: Math.min(request.limit || 50, MAX_OPERATIONS), store: request.store || undefined, machine: request.machine || undefined })
        .map((op) => operationInfo(deps.storage, op, false)),
    })),
    GetOperation: unary(deps, 'GetOperation', (request) => {
      const op = deps.storage.operations.get(request.id);
      if (!op) throw new NotFoundError(`operation "${request.id}" does not exist`, { hint: 'list operations with `slotctl operations list --all`' });
      return { operation: operationInfo(deps.storage, op) };
    }),
    CancelOperation: unary(deps, 'CancelOperation', (request) => ({ operation: operationInfo(deps.storage, deps.orchestrator.cancel(request.id)) })),
    FailoverMachine: unary(deps, 'FailoverMachine', (request) => {
      const out = deps.orchestrator.failoverMachine(request.machine, { force: request.force, dryRun: request.dryRun });
      return { dryRun: request.dryRun, plan: out.plan, problems: out.problems, operations: out.operations.map((op) => operationInfo(deps.storage, op, false)) };
    }),
    ListAtRisk: unary(deps, 'ListAtRisk', (request) => {
      if (request.store && !deps.storage.stores.get(request.store)) throw new NotFoundError(`store "${request.store}" is not in the cluster`, { hint: 'list stores with `slotctl store list`' });
      const rows = deps.storage.atRisk.list(request.store || undefined);
      return { records: rows.filter((r) => request.all || r.closedAt === null).map(atRiskInfo) };
    }),
    Recover: unary(deps, 'Recover', (request) => {
      const out = deps.orchestrator.recover({ store: request.store || undefined, machine: request.machine || undefined, dryRun: request.dryRun });
      return { dryRun: request.dryRun, plan: out.plan, problems: out.problems, operations: out.operations.map((op) => operationInfo(deps.storage, op, false)) };
    }),
    Plan: unary(deps, 'Plan', (request) => {
      const { storage } = deps;
      const cluster = () => clusterFromRows({ machines: storage.machines.list(), stores: storage.stores.list(), slots: storage.slots.list() });
      const options = { parallel: request.parallel || undefined };
      const applied = (out: { plan: unknown; operation: OperationRow | undefined }) => ({ planJson: JSON.stringify(out.plan), ...(out.operation ? { operation: operationInfo(storage, out.operation) } : {}) });
      switch (request.kind) {
        case 'layout':
          return { planJson: JSON.stringify(planLayout(cluster(), { count: request.count || undefined, prefix: request.prefix || undefined })) };
        case 'whatif':
          return { planJson: JSON.stringify(whatIf(cluster(), request.lose)) };
        case 'fanout':
          if (!request.apply) return { planJson: JSON.stringify(deps.orchestrator.previewFanOut()) };
          return applied(deps.orchestrator.startFanOut(options));
        case 'add-machine':
          // a machine declared in the cluster (and empty): what moves to it, and --apply runs it
          if (request.machine) {
            assertName(request.machine, 'machine');
            if (!request.apply) return { planJson: JSON.stringify(deps.orchestrator.previewMachineAdd(request.machine)) };
            return applied(deps.orchestrator.startMachineAdd(request.machine, options));
          }
          if (request.apply) throw new ValidationError('only a machine declared in the cluster can be filled', { hint: 'declare it in the cluster file, slotctl cluster apply FILE, then slotctl machine add NAME --apply' });
          return { planJson: JSON.stringify(planAddMachine(cluster(), parseNewMachine(request.machineJson), { prefix: request.prefix || undefined })) };
        case 'evacuate':
          assertName(request.machine, 'machine');
          if (!request.apply) return { planJson: JSON.stringify(deps.orchestrator.previewEvacuate(request.machine)) };
          return applied(deps.orchestrator.startEvacuate(request.machine, options));
        case 'rebalance': {
          if (!request.apply) return { planJson: JSON.stringify(deps.orchestrator.previewRebalance()) };
          return applied(deps.orchestrator.startRebalance(options));
        }
        default:
          throw new ValidationError(`unknown plan kind "${request.kind}"`, { hint: 'one of layout, whatif, rebalance, fanout, add-machine, evacuate' });
      }
    }),
    CleanupStatus: unary(deps, 'CleanupStatus', (request) => {
      const { storage } = deps;
      requireMachine(storage, request.machine);
      const slots = storage.slots.list().map((s) => ({ ...s, cleanupNextAt: deps.orchestrator.cleanup.nextAt(s) }));
      const rows = cleanupStatus({ slots, stores: storage.stores.list(), machines: storage.machines.list(), runs: storage.cleanup.runs({ machine: request.machine || undefined, limit: 10_000 }) }, request.machine || undefined);
      return { json: JSON.stringify(rows) };
    }),
    RunCleanup: unary(deps, 'RunCleanup', (request) => {
      const out = deps.orchestrator.cleanup.request({ slot: request.slot || undefined, machine: request.machine || undefined });
      deps.orchestrator.wake();
      return out;
    }),
    DiskStatus: unary(deps, 'DiskStatus', (request) => {
      const { storage } = deps;
      requireMachine(storage, request.machine);
      return { json: JSON.stringify(diskStatus(storage.slots.list(), deps.orchestrator.cleanup.config(), request.machine || undefined)) };
    }),
    RetireMachine: unary(deps, 'RetireMachine', (request) => {
      const out = deps.orchestrator.retire(request.machine, request.dryRun);
      return { dryRun: request.dryRun, plan: out.plan, problems: out.problems, operations: out.operations.map((op) => operationInfo(deps.storage, op, false)) };
    }),
    ExportCluster: unary(deps, 'ExportCluster', () => ({ text: exportCluster(deps.storage) })),
    ApplyCluster: unary(deps, 'ApplyCluster', (request) => {
      const outcome = applyCluster(deps.storage, request.text, {
        dryRun: request.dryRun,
        prune: request.prune,
        source: request.fileName || 'stdin',
      });
      if (outcome.applied) {
        deps.log.info({ changes: outcome.changes.length, file: request.fileName }, 'cluster applied');
        deps.onClusterChanged(outcome.touchedMachines);
      }
      return outcome;
    }),
  };
}
