// The lease keeper's thread. Everything a lease depends on runs here, on an event loop of its own: counting the
// deadline from acknowledged heartbeats, writing it (and the masters it guards) into fence.json for the fence
// process, timing its end, and renewing it over a fresh connection when acknowledgements are overdue. The agent's
// main thread forks processes, starts slots and collects garbage; on a loaded host each fork held it for ~46 ms and
// it was seen stalled for 2–4 s at a stretch — long enough, in the main thread, to cost the lease. Here it is not.
//
// Messages: see LeaseKeeper (keeper.ts), the main thread's side. The deadline the masters may serve to is shared in
// memory (`effective`): the main thread reads it without waiting for any message.
import { parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { leaseTimings, CertificateFiles, TLS_CHANNEL_OPTIONS, channelCredentials, createLogger, expectIdentity, isStaleTerm, loadContract, watchLoopLag, type HeartbeatAck__Output } from '@slotctl/shared';
import { ServingAuthority } from '../fence/authority.js';
import { writeFenceFile, type FenceFile } from '../fence/fence-file.js';
import { Lease, RENEWAL_SEQ_BASE, leaseMargin, monotonicMs, renewalDue } from './lease.js';
import { LAPSES_OFFSET, type KeeperData, type ToKeeper, type FromKeeper } from './keeper.js';
import { relayDue } from './relay.js';
import { RelaySender, type RelaySession } from './relay-sender.js';

const data = workerData as KeeperData;
const port = parentPort!;
const log = createLogger('slot-agent', { level: data.logLevel }).child({ machine: data.machine, thread: 'lease' });
// This thread's own delays, apart from the main thread's: a lease lost at a busy start-up (CI, the starvation test)
// came with the main thread held up for seconds by slot starts; whether this thread was held up too or only its
// renewals were slow to be answered is what a lapse's log must tell.
const stopLoopWatch = watchLoopLag({ log, everyMs: 1000 });
const effective = new Float64Array(data.shared, 0, 3);
const lapses = new Int32Array(data.shared, LAPSES_OFFSET, 1);
const post = (m: FromKeeper) => port.postMessage(m);
// this thread's own reading of the certificate files (checked by the main thread at start; renewals are read here too)
const certificates = data.tls ? new CertificateFiles(data.tls, { onError: (err) => log.error({ err: err.message }, 'renewed certificate files refused; the old ones stay in use') }) : undefined;
const credentials = channelCredentials(certificates, expectIdentity('coordinator'));

let file: FenceFile = data.file;
/** A failing write is told to the coordinator at most this often. */
const FAILURE_REPEAT_MS = 60_000;
let failureSaidAt = -Infinity;
/** Whether the last write of fence.json succeeded (what a flush answers). */
let lastWriteOk = true;
const write = (change: Partial<FenceFile>): boolean => {
  const next = { ...file, ...change, agentPid: process.pid };
  const started = performance.now();
  try {
    writeFenceFile(data.path, next);
  } catch (err) {
    // the fence goes on enforcing the deadline it last read: masters stop serving at it, and are started again by
    // the first write that succeeds (every acknowledgement tries again) — never a restart of the agent
    const why = `cannot write ${data.path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the fence keeps the deadline it last read and this machine's masters stop serving at it; free space or fix the state directory's disk`;
    log.error({ err: (err as Error).message, path: data.path }, 'could not write fence.json: the fence acts on the deadline it last read; masters stop serving at that deadline');
    if (monotonicMs() - failureSaidAt >= FAILURE_REPEAT_MS) {
      failureSaidAt = monotonicMs();
      post({ t: 'fence-write-failed', why });
    }
    lastWriteOk = false;
    return false;
  }
  lastWriteOk = true;
  failureSaidAt = -Infinity;
  file = next;
  const ms = performance.now() - started;
  if (ms > 50) log.warn({ ms: Math.round(ms) }, "writing fence.json took long (the state directory's disk is slow)");
  return true;
};

/** The partner the lease was last renewed through (undefined: directly). */
let relayedVia: string | undefined;
/** The masters are fenced (a lapse the coordinator has not confirmed since, as the last heartbeat said): no relay. */
let fenced = false;
/** The last heartbeat said slots are starting: renewals ask for the start hold too (RenewRequest.starting). */
let starting = false;

const authority = new ServingAuthority(
  {
    publish: (deadline, holder) => write({ deadline, holder }),
    // counted before the message leaves: the main thread must not read a renewed deadline as "held" before it has
    // handled this lapse (see LeaseKeeper.lapses)
    lost: (why) => {
      Atomics.add(lapses, 0, 1);
      // fenced from now until a heartbeat says otherwise (the coordinator confirmed the masters); nothing relayed meanwhile
      fenced = true;
      post({ t: 'lost', why });
      if (relayedVia !== undefined) {
        relayedVia = undefined;
        post({ t: 'relayed', via: undefined });
      }
    },
    regained: () => post({ t: 'held', holder: authority.holder }),
    log,
  },
  file.deadline,
);
const lease = new Lease();
const share = () => {
  effective[0] = authority.servingUntil ?? Number.NaN;
  effective[1] = authority.holds() ? 1 : 0;
  effective[2] = lease.deadline ?? Number.NaN;
};

let session: Extract<ToKeeper, { t: 'session' }> | undefined;
let margin = leaseMargin(5000);
let lastAckAt = monotonicMs();
/** The newest leadership term the link has seen (it tells this thread): a renewal acknowledged under an older one is a deposed leader's. */
let newestTerm = 0;
let renewSeq = RENEWAL_SEQ_BASE; // the main thread's stream heartbeats count from 1: these never meet them
/** The main thread sends a heartbeat every interval: silent much longer than that, it is hung, not busy. */
const MAIN_SILENCE_MS = 10_000;
let lastMainAt = monotonicMs();
let hungSaid = false;
const { Agent } = loadContract().slotctl.v1;

/** The deadline this agent inherited from fence.json (a restart's predecessor renewed it), until its first renewal. */
let inherited = file.deadline;

function acked(seq: number, leaseMs: number): void {
  lastAckAt = monotonicMs();
  if (inherited !== undefined) {
    // how close a restart came to the fence: the margin an operator reads after an upgrade
    log.info({ leftMs: Math.round(inherited - lastAckAt) }, 'first renewal of this agent: the lease inherited from the one before had this much left');
    inherited = undefined;
  }
  const deadline = lease.acked(seq, leaseMs, margin);
  if (deadline !== undefined) authority.renewLease(deadline);
  share();
}

/** While acknowledgements are overdue, a new renewal this often (see renewIfOverdue), each waiting this long: from the session's interval (lease-timing.ts). */
let { renewEveryMs, renewTimeoutMs, keptRenewTimeoutMs } = leaseTimings(5000, 1000);
const MAX_RENEWALS = 3;
let renewals = 0;
let lastRenewalAt = 0;
let keptClient: { coordinator: string; client: InstanceType<typeof Agent> } | undefined;
let keptInFlight = false;

const dialCoordinator = (coordinator: string) => new Agent(coordinator, credentials, { ...TLS_CHANNEL_OPTIONS, 'grpc.use_local_subchannel_pool': 1 });

/**
 * Opens the kept connection to the session's coordinator now, not at the first renewal: its TCP and TLS handshakes
 * are done while the agent is calm, so a renewal needed later costs one round trip. Seen at a busy cluster start
 * (the starvation test, two busy loops and 40 slots starting): the first renewal, which also had to connect, took
 * 1.5–3 s and lost a lease, where renewals over the connection once open took ~140 ms under the same load.
 */
function warmKeptConnection(coordinator: string): void {
  if (keptClient?.coordinator === coordinator) return;
  keptClient?.client.close();
  const client = dialCoordinator(coordinator);
  keptClient = { coordinator, client };
  keepConnected(client);
}

/**
 * Connects the channel and connects it again whenever it falls idle (grpc-js idles a channel after 30 min without
 * calls; the kept one may go hours without a renewal): a renewal never waits for a handshake. Failures reconnect by
 * themselves (grpc-js's backoff). Ends once the channel is no longer the kept one (closed).
 */
function keepConnected(client: InstanceType<typeof Agent>): void {
  if (keptClient?.client !== client) return;
  let state: grpc.connectivityState;
  try {
    state = client.getChannel().getConnectivityState(true);
  } catch {
    return; // closed meanwhile
  }
  if (state === grpc.connectivityState.SHUTDOWN) return;
  client.getChannel().watchConnectivityState(state, Date.now() + 3_600_000, () => keepConnected(client));
}

/**
 * Acknowledgements are overdue (the stream's connection waits out a TCP backoff after a blip, or the main thread is
 * held up), or arrive so late that the deadline is near (renewalDue): the heartbeat goes as Agent.Renew over a new
 * connection of this thread's own. Several overlap, a new one every renewEveryMs: one started during a blip has
 * its SYN dropped and waits out a 1 s, then 3 s, SYN backoff, so only a connection opened after the blip ends gets through at once (evidence: a 1.7 s blip whose
 * single renewal attempt was still in its backoff when the 4 s lease ended, and the fence fired).
 */
function renewIfOverdue(): void {
  share();
  const now = monotonicMs();
  if (!session || (keptInFlight && renewals >= MAX_RENEWALS) || now - lastRenewalAt < renewEveryMs) return;
  if (!renewalDue({ now, lastAckAt, heartbeatIntervalMs: session.intervalMs, leaseMs: session.leaseMs, deadline: lease.deadline })) return;
  // a main thread stuck for good (a bug) must not keep the machine's masters serving on this thread's say-so
  if (now - lastMainAt > MAIN_SILENCE_MS) {
    if (!hungSaid) log.error({ silentMs: now - lastMainAt }, 'the agent\'s main thread has sent nothing for 10 s: not renewing the lease for it');
    hungSaid = true;
    return;
  }
  hungSaid = false;
  // the kept connection's attempt comes on top of the MAX_RENEWALS fresh ones: if the blip holds it in TCP backoff
  // like the stream, it costs the burst nothing
  const kept = !keptInFlight;
  if (kept) keptInFlight = true;
  else renewals++;
  lastRenewalAt = now;
  const seq = ++renewSeq;
  lease.sentAt(seq, now);
  const current = session;
  // The first renewal of a burst goes over this thread's kept connection (opened when the session began, kept while
  // it answers): a TLS handshake costs the coordinator ~2.5 ms, and renewals come in bursts when it is slow — a
  // handshake per renewal fed the slowness that caused them (1,000 agents: 2,300 renewals, p99 1.8 s). The others of
  // the burst open fresh connections, which a blip's SYN backoff does not hold up.
  if (kept) warmKeptConnection(current.coordinator);
  const client = kept ? keptClient!.client : dialCoordinator(current.coordinator);
  client.Renew({ machine: data.machine, instanceId: current.instanceId, seq, starting }, { deadline: Date.now() + (kept ? keptRenewTimeoutMs : renewTimeoutMs) }, (err: grpc.ServiceError | null, ack?: HeartbeatAck__Output) => {
    if (!kept) {
      client.close();
      renewals--;
    } else {
      keptInFlight = false;
      // a kept connection that failed may be the stuck one: a new one is opened for the next burst at once
      if (err && keptClient?.client === client) {
        client.close();
        keptClient = undefined;
        if (session === current) warmKeptConnection(current.coordinator);
      }
    }
    if (err) renewalFailed(seq, kept, monotonicMs() - now, err);
    if (err || !ack || session !== current) return;
    if (isStaleTerm(newestTerm, ack.term)) {
      log.warn({ seq, term: ack.term, newestTerm, coordinator: current.coordinator }, 'renewal acknowledged under an older leadership term (a deposed leader): the lease is not renewed by it');
      return;
    }
    newestTerm = Math.max(newestTerm, ack.term);
    acked(Number(ack.seq), ack.leaseMs);
    direct();
    log.info({ seq, ms: Math.round(monotonicMs() - now), connection: kept ? 'kept' : 'fresh', leaseMs: ack.leaseMs }, "lease renewed outside the session (its acknowledgements were overdue or late)");
  });
}

/** Failed renewals said, by connection and code, at most once every 5 s each (a blip fails several a second). */
const renewalFailuresSaid = new Map<string, number>();

/**
 * A renewal outside the session that failed: said with how long it took and how much lease was left, so that a fence
 * after a run of them can be read from the log (a lapse at a busy cluster start-up left nothing to read).
 */
function renewalFailed(seq: number, kept: boolean, ms: number, err: grpc.ServiceError): void {
  const key = `${kept ? 'kept' : 'fresh'} ${err.code}`;
  const now = monotonicMs();
  if (now - (renewalFailuresSaid.get(key) ?? -Infinity) < 5000) return;
  renewalFailuresSaid.set(key, now);
  const leftMs = lease.deadline === undefined ? undefined : Math.round(lease.deadline - now);
  log.info({ seq, ms: Math.round(ms), connection: kept ? 'kept' : 'fresh', code: err.code, err: err.details, leaseLeftMs: leftMs }, 'lease renewal outside the session failed');
}

/**
 * The partners' relay (see relay.ts): kept past the session's end — a machine cut from the coordinator loses its
 * stream too, and what keeps its lease then is a partner that still reaches the coordinator. A new welcome replaces
 * it (the coordinator counts only the instance and key it welcomed last).
 */
let relaySession: (RelaySession & { intervalMs: number }) | undefined;
let rolesDigest = '';
/** Refusals of relayed renewals said, by reason, at most once a minute each. */
const refusalsSaid = new Map<string, number>();
/** A relayed renewal waits this long for its answer (two hops; a late answer still counts from when it left). */
const RELAY_TIMEOUT_MS = 1500;
const relay = new RelaySender({ machine: data.machine, credentials: (partner) => channelCredentials(certificates, expectIdentity('agent', partner)), log });

/**
 * Only a lease that still holds is kept through a partner, and only while the masters are not fenced: a relay brings
 * no desired state, so a lapse must be confirmed through a session of the machine's own (the coordinator would
 * otherwise see a machine up whose masters are stopped, and fail nothing over).
 */
function relayIfOverdue(): void {
  const ctx = relaySession;
  if (!ctx || !rolesDigest || !relay.ready()) return;
  const now = monotonicMs();
  if (fenced || !lease.held(now) || !authority.holds()) return;
  if (!relayDue({ now, lastAckAt, heartbeatIntervalMs: ctx.intervalMs, lastRelayAt: relay.lastRelayAt, inFlight: relay.inFlight, everyMs: renewEveryMs })) return;
  if (now - lastMainAt > MAIN_SILENCE_MS) return; // see renewIfOverdue
  const seq = ++renewSeq;
  lease.sentAt(seq, now);
  relay.send(ctx, { seq, rolesDigest, fenced }, now, RELAY_TIMEOUT_MS, (ack, via, failure) => {
    if (!ack) {
      // an answer that is not the coordinator's is worth a warning (a partner gone wrong, or worse), and so is the
      // coordinator's refusal (it says why the lease will not hold: other roles wanted, say); no answer is not
      const why = failure?.why ?? '';
      if (failure?.kind === 'unanswered') log.debug({ seq, via, why }, 'relayed renewal failed');
      else if (monotonicMs() - (refusalsSaid.get(why) ?? -Infinity) >= 60_000) {
        refusalsSaid.set(why, monotonicMs());
        if (refusalsSaid.size > 64) refusalsSaid.delete(refusalsSaid.keys().next().value!);
        log.warn({ seq, via }, `relayed renewal through ${via}: ${why}`);
      }
      return;
    }
    if (relaySession !== ctx) return;
    if (isStaleTerm(newestTerm, ack.term)) {
      log.warn({ seq, term: ack.term, newestTerm, via }, 'relayed renewal acknowledged under an older leadership term: not counted');
      return;
    }
    newestTerm = Math.max(newestTerm, ack.term);
    acked(ack.seq, ack.leaseMs);
    if (via !== relayedVia) {
      relayedVia = via;
      log.warn({ via, ms: Math.round(monotonicMs() - now) }, `lease renewed through partner ${via}: this machine does not reach the coordinator, its partner does`);
      post({ t: 'relayed', via });
    }
  });
}

/** An acknowledgement that came directly (stream or renewal): the relay, if there was one, is over. */
function direct(): void {
  if (relayedVia === undefined) return;
  log.info({ was: relayedVia }, 'lease renewed directly again');
  relayedVia = undefined;
  post({ t: 'relayed', via: undefined });
}

const timer = setInterval(() => {
  renewIfOverdue();
  relayIfOverdue();
}, 100);

port.on('message', (m: ToKeeper) => {
  lastMainAt = monotonicMs();
  switch (m.t) {
    case 'session':
      session = m;
      relaySession = m.relayKey ? { instanceId: m.instanceId, key: m.relayKey, intervalMs: m.intervalMs, welcomedAt: m.welcomedAt } : undefined;
      margin = leaseMargin(m.leaseMs);
      ({ renewEveryMs, renewTimeoutMs, keptRenewTimeoutMs } = leaseTimings(m.leaseMs, m.intervalMs));
      lastAckAt = monotonicMs();
      newestTerm = Math.max(newestTerm, m.term);
      warmKeptConnection(m.coordinator);
      break;
    case 'term':
      newestTerm = Math.max(newestTerm, m.term);
      break;
    case 'session-end':
      session = undefined;
      break;
    case 'sent':
      lease.sentAt(m.seq, m.at);
      starting = m.starting;
      // a heartbeat made before the main thread handled the latest lapse says nothing about it
      fenced = m.fenced || m.handled < Atomics.load(lapses, 0);
      break;
    case 'acked':
      acked(m.seq, m.leaseMs);
      direct();
      break;
    case 'roles':
      rolesDigest = m.digest;
      break;
    case 'relayers':
      relay.setCandidates(m.candidates);
      break;
    case 'failsafe':
      authority.setFailsafe(m.until);
      share();
      break;
    case 'masters':
      post({ t: 'written', id: m.id, ok: write({ masters: m.masters }) });
      break;
    case 'flush':
      // messages are handled in order: each acknowledgement before this one has had its deadline written — or not,
      // when fence.json cannot be written (the fence keeps the deadline it last read)
      post({ t: 'written', id: m.id, ok: lastWriteOk });
      break;
    case 'stop':
      clearInterval(timer);
      stopLoopWatch();
      keptClient?.client.close();
      relay.close();
      authority.stop();
      port.close();
      break;
  }
});

post({ t: 'ready', ok: write({}) });
share();
