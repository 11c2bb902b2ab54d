// The Agent.Session stream: one per agent. Thin over storage and the liveness tracker: it checks the hello,
// sends the whole desired state (again whenever it changes), persists heartbeats and reports, and logs what the
// agent says it applied.
import * as grpc from '@grpc/grpc-js';
import {
  IncompatibleVersionError,
  LogThrottle,
  SLOTCTL_VERSION,
  agentVersionProblem,
  NotFoundError,
  PermissionError,
  ValidationError,
  peerIdentity,
  assertName,
  nameProblem,
  toGrpcError,
  withContext,
  type AgentHandlers,
  type AgentMessage__Output,
  type CoordinatorMessage,
  type DesiredState,
  type Logger,
  type MailboxSummary__Output,
  type SlotReport__Output,
  type SlotResult__Output,
  type HeartbeatAck,
  type RenewRequest__Output,
  type RelayRequest__Output,
  ackMac,
  rolesDigest,
} from '@slotctl/shared';
import { EMPTY_BACKLOG, nowIso, type MailboxSummaryRow, type SlotReportInput, type SlotResults } from '../db/rows.js';
import type { Storage } from '../db/storage.js';
import { CLEANUP_SETTING, readCleanupConfig } from '../cleanup/config.js';
import { desiredStateFor } from '../desired/desired-state.js';
import type { LivenessTracker } from '../liveness/tracker.js';
import { holdMs, type HoldReason } from '../liveness/rules.js';
import { Paced, StormWatch } from './paced.js';
import { SessionWriter, WriterClosed } from './session-writer.js';
import { RelayRegistry } from './relay.js';

type SessionCall = grpc.ServerDuplexStream<AgentMessage__Output, CoordinatorMessage>;

/** The serial and end of validity of the certificate a session was opened with: which one an agent uses after a renewal. */
function certificateOf(call: SessionCall): { certificate?: { serial: string; notAfter: string } } {
  const cert = (call as unknown as { getAuthContext?: () => { sslPeerCertificate?: { serialNumber?: string; valid_to?: string } } | null }).getAuthContext?.()?.sslPeerCertificate;
  return cert?.serialNumber ? { certificate: { serial: cert.serialNumber, notAfter: cert.valid_to ?? '' } } : {};
}

export interface SessionConfig {
  heartbeatIntervalMs: number;
  leaseMs: number;
  coordinatorId: string;
  helloTimeoutMs: number;
  /** Called after an agent's reports are committed (the orchestrator waits on them). */
  onReports?: (machine: string, reports: readonly SlotReportInput[]) => void;
  /** Called when a machine's session starts or ends. */
  onSessionChange?: (machine: string) => void;
  /** Ms from now during which this coordinator, just started, declares nobody down and fails nothing over. */
  restartGraceMs?: () => number;
  /**
   * Mutual TLS is on: a session and a renewal are taken only from the certificate of the machine they name (an agent
   * saying hello as another machine would replace its session, its lease would run out and its masters be fenced).
   */
  requireIdentity?: boolean;
  /** The leadership term, sent with the welcome, every acknowledgement and every desired state (0: SQLite). */
  term?: number;
  /**
   * The lease an acknowledgement grants now; ≤ 0: none, no acknowledgement (the leadership may have ended). A
   * heartbeat that asked for a hold (`restarting`, `starting`) gets it: longer by up to `holdMs` of liveness/rules.ts.
   */
  grantLeaseMs?: (hold?: HoldReason) => number;
  /** Resolves once what a desired state about to be sent shows is durable (the etcd backend's commit). */
  durable?: () => Promise<void>;
  /** Metrics: an acknowledgement left `seconds` after its heartbeat arrived; whether a machine's agent says it is fenced. */
  observe?: { acknowledged(seconds: number): void; fenced(machine: string, fenced: boolean): void };
}

interface Session {
  machine: string;
  instanceId: string;
  call: SessionCall;
  lastSentVersion: string;
  log: Logger;
  fenced?: boolean;
}

/** More hellos than this in a second is a reconnect storm (a coordinator restart: every agent at once)... */
const STORM_HELLOS_PER_SECOND = 100;
/** ...in which a new session's desired state waits this long: its lease first. */
const STORM_DESIRED_DELAY_MS = 2000;

const MAX_LOG_LINES = 50;
const MAX_LINE = 2000;

export function toReportInput(report: SlotReport__Output): SlotReportInput {
  return {
    slot: report.slot,
    state: report.state,
    role: report.role === 'ROLE_UNSPECIFIED' ? '' : report.role,
    epochApplied: report.epochApplied,
    backlog: report.backlog ? { ...report.backlog } : EMPTY_BACKLOG,
    lastError: report.lastError.slice(0, MAX_LINE),
    pid: report.pid,
    stateReason: report.stateReason.slice(0, MAX_LINE),
    crashes: report.crashesInWindow,
    // what an agent sends is bounded before it is stored
    recentLog: report.recentLog.slice(-MAX_LOG_LINES).map((line) => line.slice(0, MAX_LINE)),
    partitions: report.partitions.length
      ? report.partitions.slice(0, 4).map((p) => ({
          role: p.role.slice(0, 10),
          path: p.path.slice(0, 1000),
          totalBytes: Number(p.totalBytes),
          freeBytes: Number(p.freeBytes),
          totalInodes: Number(p.totalInodes),
          freeInodes: Number(p.freeInodes),
          deletedBytes: Number(p.deletedBytes),
          expungedBytes: Number(p.expungedBytes),
          usedBytes: Number(p.usedBytes),
          usedInodes: Number(p.usedInodes),
          measuredAt: p.measuredAt.slice(0, 40),
          error: p.error.slice(0, MAX_LINE),
        }))
      : undefined,
    syncConfirmedEpoch: report.syncConfirmedEpoch,
    quarantine: report.quarantine
      ? { dir: report.quarantine.dir.slice(0, 500), files: report.quarantine.files.slice(0, 1000), mailboxes: report.quarantine.mailboxes.slice(0, MAX_MAILBOXES) }
      : undefined,
    recoverListening: report.recoverListening.slice(0, 100),
    results: toResults(report),
  };
}

/** The results a report carries, each bounded before it is stored (a result without its operation id: none). */
function toResults(report: SlotReport__Output): SlotResults {
  const results: SlotResults = {};
  const of = <K extends NonNullable<SlotResult__Output['kind']>>(kind: K) => report.results.find((r) => r.kind === kind)?.[kind] ?? undefined;
  const replay = of('replay');
  const check = of('check');
  const recover = of('recoverPush');
  const seed = of('seed');
  const cleanup = of('cleanup');
  const progress = of('seedProgress');
  if (progress?.op) {
    const n = (x: number | string | { toString(): string }) => Number(x) || 0;
    results['seed-progress'] = {
      op: progress.op.slice(0, 100),
      usersDone: n(progress.usersDone), users: n(progress.users), mailboxesDone: n(progress.mailboxesDone), mailboxes: n(progress.mailboxes),
      messagesDone: n(progress.messagesDone), messages: n(progress.messages), bytesDone: n(progress.bytesDone), bytes: n(progress.bytes),
      startedAt: progress.startedAt.slice(0, 40), updatedAt: progress.updatedAt.slice(0, 40),
    };
  }
  if (replay?.op) {
    results.replay = {
      op: replay.op.slice(0, 100),
      ok: replay.ok,
      replayed: replay.replayed.slice(0, 1000),
      failedFile: replay.failedFile.slice(0, 200),
      error: replay.error.slice(0, MAX_LINE),
      finishedAt: replay.finishedAt.slice(0, 40),
      ms: replay.ms,
      mailboxes: replay.mailboxes.slice(0, MAX_MAILBOXES).map(toSummary),
    };
  }
  if (check?.op) results.check = { op: check.op.slice(0, 100), mailboxes: check.mailboxes.slice(0, MAX_MAILBOXES).map(toSummary), error: check.error.slice(0, MAX_LINE) };
  if (recover?.op) {
    results['recover-push'] = {
      op: recover.op.slice(0, 100),
      done: recover.done,
      error: recover.error.slice(0, MAX_LINE),
      mailboxes: recover.mailboxes.slice(0, MAX_MAILBOXES).map((m) => ({ name: m.name, result: m.result.slice(0, 20), detail: m.detail.slice(0, MAX_LINE), messages: m.messages, missing: m.missing })),
    };
  }
  if (seed?.op) {
    results.seed = {
      op: seed.op.slice(0, 100),
      ok: seed.ok,
      users: seed.users,
      mailboxes: seed.mailboxes,
      messages: Number(seed.messages),
      ms: Number(seed.ms),
      error: seed.error.slice(0, MAX_LINE),
      failed: seed.failed.slice(0, 200).map((f) => f.slice(0, 200)),
      finishedAt: seed.finishedAt.slice(0, 40),
    };
  }
  if (cleanup?.op) {
    results.cleanup = {
      op: cleanup.op.slice(0, 100),
      ok: cleanup.ok,
      exitCode: cleanup.exitCode,
      startedAt: cleanup.startedAt.slice(0, 40),
      finishedAt: cleanup.finishedAt.slice(0, 40),
      ms: Number(cleanup.ms),
      freedBytes: Number(cleanup.freedBytes),
      error: cleanup.error.slice(0, MAX_LINE),
      tail: cleanup.tail.slice(-20).map((l) => l.slice(0, MAX_LINE)),
    };
  }
  return results;
}

const MAX_MAILBOXES = 100_000;

function toSummary(m: MailboxSummary__Output): MailboxSummaryRow {
  return {
    name: m.name.slice(0, 1000),
    exists: m.exists,
    uniqueid: m.uniqueid.slice(0, 100),
    messages: m.messages,
    uidvalidity: m.uidvalidity,
    lastUid: m.lastUid,
    highestModseq: m.highestModseq,
  };
}

export class AgentSessions {
  private readonly sessions = new Map<string, Session>();
  private readonly writer: SessionWriter;
  private readonly desired: Paced;
  private readonly storm = new StormWatch(STORM_HELLOS_PER_SECOND);
  private readonly refusals = new LogThrottle(60_000, 256);
  /** The relay keys of the agent instances welcomed (Agent.Relay). */
  readonly relays = new RelayRegistry();
  private connected: ReadonlySet<string> | undefined;
  /** After closeAll: messages still arriving on ended sessions are dropped. */
  private closed = false;

  constructor(
    private readonly storage: Storage,
    private readonly liveness: LivenessTracker,
    private readonly config: SessionConfig,
    private readonly log: Logger,
  ) {
    this.writer = new SessionWriter(storage, (err) => this.log.error({ err }, 'could not persist what agents sent (heartbeats not acknowledged)'));
    this.desired = new Paced({ budgetMs: 10 }, (machine, err) => this.log.error({ machine, err: (err as Error).stack }, 'could not send the desired state (a bug)'));
  }

  /** Read on every evaluation: made once per change of the sessions, not per call. */
  connectedMachines(): ReadonlySet<string> {
    this.connected ??= new Set(this.sessions.keys());
    return this.connected;
  }

  /** Connected machines whose last heartbeat said their masters are fenced (no lease). */
  fencedMachines(): ReadonlySet<string> {
    return new Set([...this.sessions.values()].filter((s) => s.fenced).map((s) => s.machine));
  }

  handlers(): AgentHandlers {
    return {
      Session: (call: SessionCall) => this.open(call),
      Renew: (call: grpc.ServerUnaryCall<RenewRequest__Output, HeartbeatAck>, callback: grpc.sendUnaryData<HeartbeatAck>) => this.renew(call.request, callback, call as never),
      Relay: (call: grpc.ServerUnaryCall<RelayRequest__Output, HeartbeatAck>, callback: grpc.sendUnaryData<HeartbeatAck>) => this.relay(call.request, callback, call as never),
    };
  }

  /**
   * A partner passes on the renewal of a machine cut from this coordinator (see RelayRegistry for what is checked).
   * Acknowledged, signed with the machine's relay key, after the heartbeat is committed; a refusal is
   * FAILED_PRECONDITION naming the rule, logged once a minute per machine and rule.
   */
  private relay(request: RelayRequest__Output, callback: grpc.sendUnaryData<HeartbeatAck>, call?: SessionCall): void {
    const renew = request.renew;
    let relayer: string;
    let machine: string;
    try {
      relayer = assertName(request.relayer, 'relayer');
      if (call) this.assertIdentity(call, relayer, 'relay');
      if (!renew) throw new ValidationError('a relay request without a renewal');
      machine = assertName(renew.machine, 'relayed machine');
    } catch (err) {
      callback(toGrpcError(err), null);
      return;
    }
    const row = this.storage.machines.get(machine);
    if (!row) this.relays.forget(machine); // removed from the cluster: its key goes too
    const state = row ? this.liveness.stateOf(machine) : undefined;
    const verdict = this.relays.check(
      { machine, instanceId: renew!.instanceId, seq: renew!.seq, rolesDigest: renew!.rolesDigest, mac: renew!.mac, fenced: renew!.fenced, sinceWelcomeMs: renew!.sinceWelcomeMs },
      {
        now: performance.now(),
        leaseMs: this.config.leaseMs,
        relayer,
        relayerConnected: this.sessions.has(relayer),
        relayerState: this.liveness.stateOf(relayer),
        machineState: state,
        retired: Boolean(row?.retiredAt),
        partners: this.storage.machines.partnersOf(machine),
        desiredRolesDigest: () => rolesDigest(this.desiredFor(machine).slots!.map((s) => ({ slot: s.slot!, role: String(s.role), epoch: Number(s.epoch) }))),
      },
    );
    if (!verdict.ok) {
      if (this.refusals.allow(`relay|${machine}|${verdict.problem.slice(0, 40)}`, Date.now())) this.log.warn({ machine, relayer }, `relayed heartbeat refused: ${verdict.problem}`);
      callback({ code: grpc.status.FAILED_PRECONDITION, details: `relayed heartbeat of ${machine} refused: ${verdict.problem}` }, null);
      return;
    }
    const arrived = performance.now();
    this.liveness.heard(machine, undefined, relayer);
    const seq = renew!.seq;
    const instanceId = renew!.instanceId;
    this.heartbeat(
      machine,
      () => {
        const leaseMs = this.grantLeaseMs();
        if (leaseMs <= 0) {
          callback({ code: grpc.status.UNAVAILABLE, details: 'this coordinator is losing its leadership: no lease granted' }, null);
          return;
        }
        const term = this.config.term ?? 0;
        callback(null, { seq, leaseMs, term, mac: ackMac(verdict.key, { machine, instanceId, seq, leaseMs, term }) });
        this.config.observe?.acknowledged((performance.now() - arrived) / 1000);
      },
      () => callback({ code: grpc.status.UNAVAILABLE, details: 'the heartbeat could not be persisted: no lease granted' }, null),
    );
  }

  /**
   * A heartbeat over a fresh connection (the agent's fast path after a blip): accepted for the live session of that
   * agent instance only, acknowledged after it is committed, like one on the stream.
   */
  private renew(request: RenewRequest__Output, callback: grpc.sendUnaryData<HeartbeatAck>, call?: SessionCall): void {
    if (call) {
      try {
        this.assertIdentity(call, request.machine, 'renewal');
      } catch (err) {
        callback(toGrpcError(err), null);
        return;
      }
    }
    const session = this.sessions.get(request.machine);
    if (!session || session.instanceId !== request.instanceId) {
      callback({ code: grpc.status.FAILED_PRECONDITION, details: `no session of agent instance ${request.instanceId} of machine ${request.machine}` }, null);
      return;
    }
    const arrived = performance.now();
    this.liveness.heard(session.machine);
    const hold: HoldReason | undefined = request.starting ? 'starting' : undefined;
    this.heartbeat(
      session.machine,
      () => {
        const leaseMs = this.grantLeaseMs(hold, session.machine);
        if (leaseMs > 0) {
          callback(null, { seq: request.seq, leaseMs, term: this.config.term ?? 0 });
          this.config.observe?.acknowledged((performance.now() - arrived) / 1000);
        } else callback({ code: grpc.status.UNAVAILABLE, details: 'this coordinator is losing its leadership: no lease granted' }, null);
      },
      () => callback({ code: grpc.status.UNAVAILABLE, details: 'the heartbeat could not be persisted: no lease granted' }, null),
    );
  }

  /** Re-sends the desired state to every connected machine in `machines` whose state changed. */
  push(machines: Iterable<string>): void {
    for (const machine of machines) {
      const session = this.sessions.get(machine);
      if (session) this.sendDesired(session);
    }
  }

  /** Ends every session (coordinator shutdown); agents reconnect to the next coordinator. */
  /** Ends every session; what they sent and is not written yet is written only when `write` (a clean stop). */
  closeAll(write = true): void {
    this.closed = true;
    this.desired.cancel();
    this.writer.close(write);
    for (const session of this.sessions.values()) session.call.end();
    this.sessions.clear();
    this.connected = undefined;
  }

  private open(call: SessionCall): void {
    const peer = call.getPeer();
    let session: Session | undefined;
    const helloTimer = setTimeout(() => {
      call.emit('error', Object.assign(new Error('no hello'), toGrpcError(new ValidationError(`no hello within ${this.config.helloTimeoutMs} ms`))));
    }, this.config.helloTimeoutMs);

    call.on('data', (message: AgentMessage__Output) => {
      if (this.closed) return; // a deposed leader's session: its database is closed, nothing it says is acted on
      try {
        if (!session) {
          clearTimeout(helloTimer);
          session = this.hello(call, message);
          return;
        }
        this.handle(session, message);
      } catch (err) {
        this.log.warn({ peer, machine: session?.machine, err: (err as Error).message }, 'agent session refused');
        // as a status the agent can read (destroy() only drops the stream: the caller saw "Connection dropped")
        call.emit('error', Object.assign(new Error((err as Error).message), toGrpcError(err)));
      }
    });
    const closed = (why: string) => {
      clearTimeout(helloTimer);
      if (session && this.sessions.get(session.machine) === session) {
        this.sessions.delete(session.machine);
        this.connected = undefined;
        session.log.info({ why }, 'agent session ended');
        const machine = session.machine;
        const at = nowIso();
        this.writer.enqueue(() => this.storage.events.append({ kind: 'agent.disconnected', machine, reason: `session ended: ${why}` }, at), (err) => {
          if (err) this.log.error({ machine, err: (err as Error).message }, 'could not record a disconnection');
          this.config.onSessionChange?.(machine);
        });
      }
    };
    call.on('end', () => {
      closed('agent closed the stream');
      call.end();
    });
    call.on('error', (err) => closed(err.message));
    call.on('cancelled', () => closed('cancelled'));
  }

  /**
   * With mutual TLS, the certificate must be the agent certificate of `machine`; otherwise the attempt is refused and
   * raised as an event (the real agent's session and lease are untouched).
   */
  private assertIdentity(call: SessionCall, claimed: string, what: string): void {
    let machine = claimed;
    if (!this.config.requireIdentity) return;
    const id = peerIdentity(call as unknown as Parameters<typeof peerIdentity>[0]);
    if (id?.role === 'agent' && id.name === machine) return;
    // the claimed name comes from a caller not yet trusted: quoted and cut before it reaches an event or a log
    if (nameProblem(machine)) machine = JSON.stringify(machine.slice(0, 64));
    const who = id ? `${id.role} ${id.name}` : 'no certificate signed by the cluster CA';
    const reason = `${what} as machine ${machine} refused: the caller (${call.getPeer()}) presented ${who}`;
    // recorded once a minute per certificate (or lack of one) and kind of call: anyone on the network can be refused
    if (this.refusals.allow(`${who}|${what}${id ? `|${machine}` : ''}`, Date.now())) {
      this.log.warn({ machine, caller: id, peer: call.getPeer() }, reason);
      const known = this.storage.machines.get(machine) ? machine : undefined;
      this.writer.enqueue(() => this.storage.events.append({ kind: 'agent.identity-refused', ...(known ? { machine: known } : {}), reason, data: { caller: id ?? null } }, nowIso()), (err) => {
        if (err) this.log.error({ err: (err as Error).message }, 'could not record a refused identity');
      });
    }
    throw new PermissionError(`${what} as machine ${machine} refused: this certificate is for ${who}`, { hint: `give agent ${machine} its own certificate: slotctl pki issue agent ${machine} --dir PKI-DIR --out DIR` });
  }

  /**
   * A rolling upgrade runs coordinators one minor version ahead of some agents for a while: that is accepted, anything
   * else refused with an event that names both versions (recorded once a minute per machine and version; the agent
   * keeps retrying, and its slots keep serving until its lease runs out — an old agent must not be told a desired state
   * in a contract it may read differently).
   */
  private assertVersion(call: SessionCall, machine: string, agentVersion: string): void {
    const problem = agentVersionProblem(agentVersion, SLOTCTL_VERSION);
    if (!problem) return;
    if (this.refusals.allow(`version|${machine}|${agentVersion.slice(0, 40)}`, Date.now())) {
      this.log.warn({ machine, agentVersion: agentVersion.slice(0, 40), peer: call.getPeer() }, `agent refused: ${problem.reason}`);
      this.writer.enqueue(() => this.storage.events.append({ kind: 'agent.version-refused', machine, reason: `${problem.reason}; ${problem.hint}`, data: { agentVersion: agentVersion.slice(0, 40), coordinatorVersion: SLOTCTL_VERSION } }, nowIso()), (err) => {
        if (err) this.log.error({ err: (err as Error).message }, 'could not record a refused agent version');
      });
    }
    throw new IncompatibleVersionError(`agent of machine ${machine} refused: ${problem.reason}`, { hint: problem.hint });
  }

  private hello(call: SessionCall, message: AgentMessage__Output): Session {
    if (message.body !== 'hello' || !message.hello) throw new ValidationError('the first message of a session must be hello');
    const hello = message.hello;
    const machine = assertName(hello.machine, 'hello.machine');
    this.assertIdentity(call, machine, 'hello');
    if (!this.storage.machines.get(machine)) {
      throw new NotFoundError(`machine "${machine}" is not in the cluster`, {
        hint: 'add it to the cluster file and run `slotctl cluster apply FILE`, or fix the agent\'s --machine',
      });
    }
    this.assertVersion(call, machine, hello.agentVersion);
    const previous = this.sessions.get(machine);
    const session: Session = { machine, instanceId: hello.instanceId, call, lastSentVersion: '', log: withContext(this.log, { machine }) };
    this.sessions.set(machine, session);
    this.connected = undefined;
    if (previous) {
      previous.log.warn('a newer session for this machine replaces this one');
      previous.call.destroy(Object.assign(new Error('replaced'), { code: grpc.status.ABORTED, details: 'replaced by a newer session of the same machine' }));
    }
    // heard first: a machine coming back must be up before anything reacts to its reports. Saving them wakes the
    // orchestrator, and a machine still marked down then had its masters failed over while its agent, sent the
    // desired state of a moment earlier, started them as masters: two masters for a second or two (seen in a test).
    this.liveness.heard(machine);
    // the rest is written with this turn's other writes (a thousand agents say hello at once after a restart)
    const at = nowIso();
    const connected = { kind: 'agent.connected', machine, reason: `agent ${hello.agentVersion} connected from ${call.getPeer()}`, data: { instanceId: hello.instanceId, slots: hello.slots.length, ...certificateOf(call) } };
    this.writer.enqueue(
      () => {
        this.storage.machines.setAgentVersion(machine, hello.agentVersion);
        this.storage.events.append(connected, at);
      },
      (err) => {
        if (err && !(err instanceof WriterClosed)) session.log.error({ err: (err as Error).message }, 'could not record the connection');
      },
    );
    this.saveReports(session, hello.slots);
    session.log.info({ agentVersion: hello.agentVersion, instanceId: hello.instanceId }, 'agent session started');
    const restartGraceMs = this.config.restartGraceMs?.() ?? 0;
    const relayKey = this.relays.welcome(machine, hello.instanceId, performance.now());
    call.write({ welcome: { heartbeatIntervalMs: this.config.heartbeatIntervalMs, leaseMs: this.config.leaseMs, coordinatorId: this.config.coordinatorId, restartGraceMs, term: this.config.term ?? 0, relayKey } });
    // the welcome (and so the lease) at once; the desired state (a query and a digest, half of a hello's work, and
    // the agent answers it with a full report) paced, and in a reconnect storm only once the storm has passed: a
    // thousand hellos after a restart held every acknowledgement behind them
    this.desired.add(machine, () => {
      if (this.sessions.get(machine) === session) this.sendDesired(session);
    }, this.storm.hello(performance.now()) ? STORM_DESIRED_DELAY_MS : 0);
    return session;
  }

  private handle(session: Session, message: AgentMessage__Output): void {
    switch (message.body) {
      case 'heartbeat': {
        const arrived = performance.now();
        this.liveness.heard(session.machine, message.heartbeat?.peers);
        const fenced = message.heartbeat?.fenced ?? false;
        if (fenced !== session.fenced) this.config.observe?.fenced(session.machine, fenced);
        session.fenced = fenced;
        const seq = message.heartbeat?.seq ?? 0;
        // a restart hold first: it is the longer, and the agent is about to go
        const hold: HoldReason | undefined = message.heartbeat?.restarting ? 'restarting' : message.heartbeat?.starting ? 'starting' : undefined;
        this.heartbeat(session.machine, () => {
          const leaseMs = this.sessions.get(session.machine) === session ? this.grantLeaseMs(hold, session.machine) : 0;
          if (leaseMs > 0) {
            // a fenced agent starts its masters again on this acknowledgement's word: the version is read afresh
            // (and a desired state not sent yet goes first), never one a failover has since made stale
            if (fenced) this.sendDesired(session);
            session.call.write({ ack: { seq, leaseMs, term: this.config.term ?? 0, desiredVersion: session.lastSentVersion } });
            this.config.observe?.acknowledged((performance.now() - arrived) / 1000);
          }
        });
        return;
      }
      case 'reports':
        this.saveReports(session, message.reports?.slots ?? []);
        return;
      case 'applied': {
        const applied = message.applied!;
        const refused = applied.slots.filter((s) => s.result === 'REFUSED');
        const changed = applied.slots.filter((s) => s.result === 'CHANGED');
        session.log.info({ version: applied.version, changed: changed.length, refused: refused.length }, 'agent applied desired state');
        for (const slot of refused) {
          this.storage.events.append({ kind: 'slot.apply-refused', machine: session.machine, slot: slot.slot, reason: slot.detail });
        }
        return;
      }
      case 'event': {
        const event = message.event!;
        const slot = this.storage.slots.get(event.slot);
        if (!slot || slot.machine !== session.machine) {
          session.log.warn({ slot: event.slot }, 'event for a slot that is not on this machine ignored');
          return;
        }
        const kind = /^[a-z][a-z0-9.-]{0,40}$/.test(event.kind) ? event.kind : 'other';
        this.storage.events.append({ kind: `slot.${kind}`, machine: session.machine, store: slot.store, slot: slot.name, epoch: this.storage.stores.get(slot.store)?.epoch, reason: event.message.slice(0, 2000) });
        return;
      }
      case 'hello':
        throw new ValidationError('hello sent twice on one session');
      default:
        throw new ValidationError(`unknown message "${String(message.body)}"`);
    }
  }

  /** Persists a heartbeat; `ack` runs after the commit (never for one that could not be written: `failed` then). */
  private heartbeat(machine: string, ack: () => void, failed?: () => void): void {
    const at = nowIso();
    this.writer.heartbeat(() => this.storage.machines.recordHeartbeat(machine, at), (err) => {
      if (!err) ack();
      else failed?.();
    });
  }

  /** Reports are committed with the turn's other writes; one that cannot be stored ends its session. */
  private saveReports(session: Session, reports: readonly SlotReport__Output[]): void {
    if (reports.length === 0) return;
    const inputs = reports.map(toReportInput);
    this.writer.enqueue(
      () => this.storage.slots.saveReports(session.machine, inputs),
      (err, ignored) => {
        if (err instanceof WriterClosed) return; // this coordinator stopped leading: the session is ended already
        if (err) {
          session.log.warn({ err: (err as Error).message }, 'agent reports could not be stored: session ended');
          session.call.emit('error', Object.assign(new Error((err as Error).message), toGrpcError(err))); // a status the agent reads
          return;
        }
        if (ignored?.length) session.log.warn({ slots: ignored }, 'agent reports slots that the database does not place on this machine');
        this.config.onReports?.(session.machine, inputs);
      },
    );
  }

  /**
   * `hold`: the heartbeat asks for a restart or a start hold (see liveness/rules.ts). With `machine`, a hold granted is
   * counted by the liveness tracker here, before the answer leaves: the agent never counts on a longer lease than
   * the coordinator waits for.
   */
  private grantLeaseMs(hold?: HoldReason, machine?: string): number {
    const leaseMs = this.config.grantLeaseMs?.(hold) ?? this.config.leaseMs + holdMs(this.config.leaseMs, hold);
    if (machine && hold && leaseMs > this.config.leaseMs) this.liveness.hold(machine, leaseMs - this.config.leaseMs, hold);
    return leaseMs;
  }

  /**
   * Sends the machine's desired state if it changed — once what it shows is durable: an agent never acts on an epoch
   * that a coordinator crash could undo (etcd backend; with SQLite it was committed before this ran). Sends of one
   * session leave in the order they were made (durable() resolves in order).
   */
  private sendDesired(session: Session): void {
    const desired: DesiredState = { ...this.desiredFor(session.machine), term: this.config.term ?? 0 };
    if (desired.version === session.lastSentVersion) return;
    session.lastSentVersion = desired.version!;
    const send = () => {
      if (this.sessions.get(session.machine) !== session) return;
      session.call.write({ desired });
      session.log.info({ version: desired.version, slots: desired.slots?.length }, 'desired state sent');
    };
    if (!this.config.durable) return send();
    this.config.durable().then(send, (err: unknown) => {
      session.log.warn({ err: (err as Error).message, version: desired.version }, 'desired state not sent: its changes could not be made durable');
    });
  }

  desiredFor(machine: string): DesiredState {
    const policy = readCleanupConfig(this.storage.settings.get(CLEANUP_SETTING));
    const row = this.storage.machines.get(machine);
    return desiredStateFor(machine, row?.address ?? '', this.storage.slots.placedOfMachine(machine), policy, row?.disks.map((d) => d.path) ?? []);
  }
}
