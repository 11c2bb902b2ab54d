// The agent built from its parts, in the order they depend on each other: state on disk, the log collector, the lease
// (on a thread of its own) and the fence process that acts on it, the interface's addresses, the slots, the peer
// link and the link to the coordinator; its HTTP endpoints (health, metrics) come first and go last. main.ts only
// turns flags into AgentOptions; this file owns the lifecycle: start, then a graceful stop (the caller forces the exit
// when it takes too long).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CertificateFiles, ObserveServer, SLOTCTL_VERSION, type DesiredState__Output, type Logger, type Readiness, leaseTimings, UnavailableError } from '@slotctl/shared';
import { CoordinatorLink } from './coordinator/link.js';
import { FenceGuard } from './fence/guard.js';
import { LeaseKeeper } from './lease/keeper.js';
import { monotonicMs } from './lease/lease.js';
import { mayServeMaster, saysFenced, type ServeGateView } from './lease/serve-gate.js';
import { SlotLogs, ensureSyslog, keepSyslog } from './logs/slot-logs.js';
import { MachineSlots } from './machine/slots.js';
import { agentReadiness, agentRoutes } from './observe/http.js';
import { AgentMetrics, type AgentView } from './observe/metrics.js';
import { withholdPromotions } from './peer/failsafe.js';
import { PeerLink } from './peer/link.js';
import { preflightAtStart } from './preflight/checks.js';
import { AppliedStore } from './state/applied-store.js';
import { ReplayStore } from './state/replay-store.js';
import { UnloggedStore } from './sync/unlogged.js';
import { AddressWatch } from './vip/address-watch.js';
import { IpVipDriver } from './vip/ip.js';
import { LoopbackVipDriver } from './vip/loopback.js';
import { tuneArpRetransmit } from './vip/neighbour.js';

/** How long after the lease ran out the agent stops masters itself, behind the fence process (2–3 of its ticks). */
const FENCE_BACKUP_DELAY_MS = 250;
/** How long a stopping agent that leaves its slots serving waits for its last heartbeat's acknowledgement (see stop). */
const HANDOVER_RENEWAL_MS = 1000;
/** A desired state the coordinator's acknowledgements name and that has not arrived this long after the lease came back is fetched by a fresh session. */
const RESYNC_AFTER_MS = 10_000;

export interface AgentOptions {
  machine: string;
  /** Coordinator addresses (--coordinator): one, or several of which one leads. */
  coordinators: string[];
  stateDir: string;
  auth: { mode: 'sasldb' | 'test'; syncUser: string; syncPassword: string };
  ports: { imap: number; lmtp: number; sync: number; peer: number };
  vip: { driver: 'loopback' | 'ip'; iface: string; arpProbeMs: number; arpRetransmitMs: number };
  syslog: { dir: string; socket: string };
  stopSlotsOnExit: boolean;
  stallAfterMs: number;
  readyTimeoutMs: number;
  diskReportIntervalMs: number;
  /** Bytes a second a seed from this machine averages at most (0: none). */
  seedRateLimit?: number;
  reconcileIntervalMs: number;
  logLevel: string;
  /** This machine's certificate (mutual TLS to the coordinator and to partner agents); undefined only --insecure. */
  certificates?: CertificateFiles;
  /** --http-listen: HOST:PORT of /livez, /readyz and /metrics (served with `certificates`); undefined: none. */
  httpListen?: string;
}

export type AgentPhase = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

const bin = (name: string) => fileURLToPath(new URL(`../bin/${name}`, import.meta.url));

export class Agent {
  phase: AgentPhase = 'new';
  private link: CoordinatorLink | undefined;
  private slots: MachineSlots | undefined;
  private peers: PeerLink | undefined;
  private keeper: LeaseKeeper | undefined;
  private guard: FenceGuard | undefined;
  private fenceWatch: NodeJS.Timeout | undefined;
  /** The last desired state (partners, each slot's peer machine). */
  private desired: DesiredState__Output | undefined;
  /** What /metrics shows; counted by the parts it is handed to. */
  readonly metrics = new AgentMetrics();
  private http: ObserveServer | undefined;
  /** The lease ran out and has not been held since (its return is then a fence action). */
  private leaseLost = false;
  /**
   * The lease is held again after it ran out, and the masters wait for the coordinator to confirm the desired state
   * they were fenced under: a failover while this machine was away made them replicas, and the desired state saying
   * so may still be on its way (the lease can come back over a fresh connection before the session's stream
   * delivers). Until then no master starts and none holds its service IP.
   */
  private unconfirmed = false;
  /** The lease lapses the main thread has handled (its `lost`): one the lease thread counted beyond it is pending. */
  private lapsesHandled = 0;
  /** The last confirmation since the lease last ran out (see LinkOptions.confirmed), and when the lease came back. */
  private confirmation: { version: string; matches: boolean } | undefined;
  private regainedAt = 0;
  private resynced = false;
  /** Called after each pass of the supervision loop (the systemd watchdog's keep-alive goes from there). */
  private readonly tickListeners: Array<() => void> = [];

  constructor(private readonly opts: AgentOptions, private readonly log: Logger) {}

  async start(): Promise<void> {
    if (this.phase !== 'new') throw new Error(`the agent was already started (${this.phase})`);
    this.phase = 'starting';
    const { opts, log } = this;
    // first: a port already taken refuses the start before any slot, lease or fence is touched
    await this.listenHttp();
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    const applied = new AppliedStore(opts.stateDir, opts.machine);
    const persisted = await applied.load();
    const replays = new ReplayStore(opts.stateDir);
    await replays.load();
    const unlogged = new UnloggedStore(opts.stateDir, (err) => log.error({ err: err.message }, 'writing unlogged.json failed: trying again in 2 s'));
    await unlogged.load();
    // the lease thread boots (it loads gRPC: most of a second on a loaded host) while the log collector is checked:
    // a restarted agent has its predecessor's lease to renew, and every step before the session spends it
    const leaseStarting = this.startLease();
    leaseStarting.catch(() => undefined); // awaited below: its error is thrown there
    await this.startSyslog();
    const keeper = await leaseStarting;
    if (opts.vip.driver === 'ip') tuneArpRetransmit(opts.vip.iface, opts.vip.arpRetransmitMs, log);
    // the interface's addresses as they change (ip monitor), so that reconciling them costs no process per look
    const addressWatch = opts.vip.driver === 'ip' ? new AddressWatch({ iface: opts.vip.iface, log, onChange: () => void this.slots?.reconcileNow().catch(() => undefined) }) : undefined;
    await addressWatch?.start();
    const slots = new MachineSlots({
      runtime: {
        ports: { imap: opts.ports.imap, lmtp: opts.ports.lmtp, sync: opts.ports.sync },
        auth: opts.auth,
        vip: opts.vip.driver === 'ip' ? new IpVipDriver({ iface: opts.vip.iface, probeMs: opts.vip.arpProbeMs, log, watch: addressWatch }) : new LoopbackVipDriver(),
        mayServeMaster: () => mayServeMaster(this.serveGate(keeper)),
        // the slots' paths must lie under these (none declared: only the system's directories are refused)
        disks: () => this.desired?.diskPaths ?? [],
        crashLimit: 5,
        crashWindowMs: 60_000,
        stopTimeoutMs: 10_000,
        readyTimeoutMs: opts.readyTimeoutMs,
        metrics: this.metrics,
        // root's own directory: what each cyrmaster writes to stdout/stderr, read back when it exits unasked
        outputDir: join(opts.stateDir, 'cyrmaster'),
      },
      // Either slot-syslogd or the host's syslog daemon (with the slotctl rsyslog rule) writes DIR/SLOT.log.
      logs: new SlotLogs(opts.syslog.dir),
      log,
      onChange: (what) => this.link?.reportSoon(what),
      onEvent: (slot, kind, message) => this.link?.sendEvent(slot, kind, message),
      recentLogLines: 20,
      stallAfterMs: opts.stallAfterMs,
      diskReportIntervalMs: opts.diskReportIntervalMs,
      seedRateLimit: opts.seedRateLimit ?? 0,
      replays,
      unlogged,
      publishMasters: (masters) => keeper.publishMasters(masters),
      // the peer link exists long before any recovery asks
      targetGuids: (machine, slot, names) => this.peers!.askGuids(machine, slot, names),
      targetUserSync: (machine, slot, users) => this.peers!.askUserSync(machine, slot, users),
    });
    this.slots = slots;
    const adopted = await slots.adopt(persisted);
    slots.startDiskReports();
    slots.startReconciling(opts.reconcileIntervalMs, () => {
      for (const fn of this.tickListeners) fn();
    });
    log.info({ coordinators: opts.coordinators, term: applied.term, stateDir: opts.stateDir, slots: Object.keys(persisted).length, adopted, version: SLOTCTL_VERSION, sinceProcessStartMs: Math.round(performance.now()) }, 'agent starting');
    this.peers = this.startPeers(keeper, slots);
    this.link = new CoordinatorLink({
      certificates: opts.certificates,
      machine: opts.machine,
      coordinators: opts.coordinators,
      applied,
      slots,
      log,
      lease: keeper,
      onDesired: (d) => {
        this.desired = d;
        this.peers!.setPartners(d.peers);
        if (d.address) this.peers!.listen(d.address).catch((err: Error) => log.error({ err: err.message, address: d.address, port: opts.ports.peer }, 'cannot serve Peer: partners cannot confirm for this machine'));
      },
      withhold: (plan, previous) => withholdPromotions(plan, previous, (slot) => this.peerMachine(slot), this.peers!.promises, monotonicMs()),
      peerViews: () => this.peers!.views(),
      starting: () => slots.starting(),
      onWelcome: (intervalMs, leaseMs) => {
        const t = leaseTimings(leaseMs, intervalMs);
        this.peers!.setTimings(t.peerIntervalMs, t.failsafeMarginMs);
      },
      // fenced means a lease was held and ran out (masters stopped) and the masters have not started since; an agent
      // that has not had its first lease yet is not
      fenced: () => saysFenced({ ...this.serveGate(keeper), everHeld: keeper.remaining() !== undefined }),
      confirmed: (version, matches) => {
        // only while the lease is held: one read before the lease came back may predate a failover, one read while
        // it is held cannot (no promotion before a granted lease has run out, and then the masters stop again)
        if (!keeper.holds()) return;
        this.confirmation = { version, matches };
        this.resumeIfConfirmed();
      },
    });
    this.link.start();
    // Debian's own Cyrus running beside the slots is worth a warning (a slot whose ports it holds fails), but not
    // before the session: the look reads every process's command line (~1 s on a loaded host), and a restarted agent
    // has to renew the lease its slots inherited first
    void preflightAtStart(log).catch((err: Error) => log.warn({ err: err.message }, "could not look for Debian's own Cyrus"));
    this.metrics.setSource(() => this.view());
    this.phase = 'running';
  }

  /** `fn` runs after each pass of the agent's supervision loop (slots' processes and addresses): it stops when the loop hangs. */
  onTick(fn: () => void): void {
    this.tickListeners.push(fn);
  }

  /** What the agent is doing, in a line (systemd's STATUS=): from memory, as cheap as a scrape. */
  statusLine(): string {
    const { link, keeper, slots } = this;
    if (this.phase !== 'running' || !link || !keeper || !slots) return this.phase;
    const seen = slots.observe();
    const serving = seen.filter((s) => s.state === 'SERVING');
    const masters = serving.filter((s) => s.role === 'MASTER').length;
    const session = link.state.phase === 'connected' ? `connected to ${link.state.coordinator}` : `coordinator: ${link.state.phase}`;
    const lease = keeper.holds() ? (keeper.relayedVia ? `held via ${keeper.relayedVia}` : 'held') : 'not held';
    return `serving ${serving.length}/${seen.length} slots (${masters} master), ${session}, lease ${lease}`;
  }

  /** The port the HTTP endpoints listen on (0: none). */
  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  private async listenHttp(): Promise<void> {
    const address = this.opts.httpListen;
    if (!address) return;
    const http = new ObserveServer({ certificates: this.opts.certificates, routes: agentRoutes({ readiness: () => this.readiness(), metrics: this.metrics }), log: this.log, program: 'slot-agent' });
    await http.listen(address).catch((err: Error) => {
      throw new Error(`cannot serve HTTP on ${address} (--http-listen): ${err.message}`);
    });
    this.http = http;
  }

  /** Ready: a session with the leading coordinator and a lease held (from memory only: a probe costs nothing). */
  readiness(): Readiness {
    return agentReadiness({ phase: this.phase, link: this.link?.state, leaseRemainingMs: this.keeper?.remaining(), holder: this.keeper?.holder ?? '', term: this.link?.term ?? 0 });
  }

  /** What a scrape reads: the sources the reports to the coordinator are built from, in memory. */
  private view(): AgentView | undefined {
    const { link, keeper, slots } = this;
    if (!link || !keeper || !slots) return undefined;
    return { connected: link.state.phase === 'connected', term: link.term, leaseRemainingMs: keeper.remaining(), leaseMs: keeper.grantedLeaseMs, relayedVia: keeper.relayedVia, slots: slots.observe() };
  }

  /**
   * Graceful stop: the link goes first, so that no desired state arriving meanwhile starts a slot again; the slots
   * are left serving (a restarted agent re-adopts them) unless `stopSlots` (--stop-slots-on-exit, or the system is
   * shutting down: see systemd.ts), and then nothing is left to guard. `progress` hears each step of stopping them.
   */
  async stop(how: { stopSlots?: boolean; why?: string; progress?: (what: string, ms: number) => void } = {}): Promise<void> {
    if (this.phase === 'stopping' || this.phase === 'stopped') return;
    this.phase = 'stopping';
    this.peers?.stop();
    const stopSlots = (how.stopSlots ?? this.opts.stopSlotsOnExit) && this.slots;
    // stopping slots: the session (so the lease) stays until they are stopped, a stopped master's flush needs it
    if (stopSlots) this.link?.freeze();
    else {
      // the slots keep serving under the lease the next agent inherits from fence.json: renewed on the way out with
      // the coordinator's restart hold, it gives a restart (a package upgrade) a whole lease and the hold to
      // reconnect in, not what was left of a lease an interval old
      const acked = await this.link?.stop(HANDOVER_RENEWAL_MS);
      const written = this.keeper ? await Promise.race([this.keeper.flush(), new Promise<boolean>((r) => setTimeout(() => r(false), HANDOVER_RENEWAL_MS).unref())]) : false;
      const renewed = Boolean(acked && written);
      const leftMs = this.keeper?.remaining();
      this.log.info(
        { renewed, acked: Boolean(acked), written, leaseLeftMs: leftMs === undefined ? undefined : Math.round(leftMs) },
        renewed ? 'lease renewed for the agent started next: its masters serve on it until that agent renews it' : 'the last renewal was not acknowledged, or not written to fence.json: the agent started next has what is left of the lease',
      );
    }
    if (stopSlots && this.slots) {
      const keeper = this.keeper;
      await this.slots.stopInOrder(how.why ?? 'agent stopping with --stop-slots-on-exit', { mayReplay: () => keeper?.holds() ?? false, progress: how.progress ?? (() => undefined) });
      clearInterval(this.fenceWatch);
      await this.keeper?.publishMasters([]);
      this.guard?.stopProcess();
      await this.link?.stop();
    }
    await this.slots?.detachAll();
    // last: a load balancer and Prometheus see the agent (not ready) until it has stopped
    await this.http?.close();
    this.phase = 'stopped';
  }

  /** The log collector is not worth a mail outage: one slow to come up (a loaded host at boot) is watched and started again, and the slots start meanwhile. */
  private async startSyslog(): Promise<void> {
    const { dir, socket } = this.opts.syslog;
    const syslog = await ensureSyslog(dir, socket, bin('slot-syslogd.js'), this.log).catch((err: Error) => {
      this.log.error({ err: err.message, socket }, 'slot-syslogd is not answering yet: starting the slots anyway, their Cyrus lines are lost until it does');
      return 'ours' as const;
    });
    if (syslog === 'ours') keepSyslog(dir, socket, bin('slot-syslogd.js'), this.log);
  }

  /**
   * The lease runs on a thread of its own (lease/worker.ts): slot work on this thread cannot hold up its renewal,
   * nor the fence's view of it. It writes fence.json before the fence process starts, which guards the masters from
   * then on, independent of this process (SIGSTOP, a stuck loop).
   */
  private async startLease(): Promise<LeaseKeeper> {
    const { opts, log } = this;
    const guard = new FenceGuard({ stateDir: opts.stateDir, bin: bin('slot-fence.js'), vip: { driver: opts.vip.driver, iface: opts.vip.iface }, log });
    const keeper: LeaseKeeper = new LeaseKeeper({
      tls: opts.certificates?.paths,
      machine: opts.machine,
      logLevel: opts.logLevel,
      path: guard.filePath,
      file: guard.initialFile,
      log,
      handledLapses: () => this.lapsesHandled,
      // the fence process kills the masters at the deadline (within its 100 ms tick) and records it; the agent does
      // the same a moment later in case that process is gone (well inside the margin before any promotion). A lease
      // already lost at start (a restart after its deadline) calls back before the slots exist: they start fenced.
      lost: () => {
        this.metrics.fenceAction('lease-expired');
        this.leaseLost = true;
        this.lapsesHandled = keeper.lapses();
        // the masters wait for the coordinator's word from the lapse on, not only from the lease's return
        this.unconfirmed = true;
        this.confirmation = undefined;
        setTimeout(() => (keeper.holds() ? undefined : void this.slots?.fence()), FENCE_BACKUP_DELAY_MS).unref();
      },
      regained: () => {
        // the first lease of this agent is no return: only one after an expiry counts
        if (!this.leaseLost) return void this.slots?.resume();
        this.metrics.fenceAction('lease-regained');
        this.leaseLost = false;
        this.unconfirmed = true;
        this.regainedAt = monotonicMs();
        this.resynced = false;
        this.log.info('lease held again: masters start once the coordinator confirms the desired state they were fenced under');
        this.resumeIfConfirmed();
      },
      // a critical event on each local master (the coordinator's events are per slot): they stop serving at the
      // deadline the fence last read until fence.json can be written again
      fenceWriteFailed: (why) => {
        for (const slot of this.slots?.masterSlots() ?? []) this.link?.sendEvent(slot, 'fence-write-failed', `critical: ${why}`);
      },
    });
    await keeper.start();
    await guard.start();
    this.fenceWatch = setInterval(() => void guard.keepRunning().catch((err: Error) => log.error({ err: err.message }, 'could not start the fence process')), 5000);
    this.fenceWatch.unref();
    this.keeper = keeper;
    this.guard = guard;
    return keeper;
  }

  private serveGate(keeper: LeaseKeeper): ServeGateView {
    return { holds: keeper.holds(), lapses: keeper.lapses(), lapsesHandled: this.lapsesHandled, unconfirmed: this.unconfirmed };
  }

  /**
   * The fenced masters start again when the lease is held and an acknowledgement of a heartbeat sent since it ran
   * out names the desired version applied here. One naming another means a newer desired state is on its way; when
   * it has not come RESYNC_AFTER_MS after the lease did, a fresh session fetches it.
   */
  private resumeIfConfirmed(): void {
    if (!this.unconfirmed || !this.keeper?.holds() || !this.confirmation) return;
    const { version, matches } = this.confirmation;
    if (!matches) {
      if (!this.resynced && monotonicMs() - this.regainedAt > RESYNC_AFTER_MS) {
        this.resynced = true;
        this.link?.resync(`the coordinator's desired version ${version} has not arrived ${RESYNC_AFTER_MS / 1000} s after the lease came back; the masters wait for it`);
      }
      return;
    }
    this.unconfirmed = false;
    this.log.info({ version }, 'the coordinator confirmed the desired state: fenced masters start again');
    void this.slots?.resume();
  }

  /**
   * Partners: who holds the replicas of this machine's masters (their promises keep the masters up when the
   * coordinator is unreachable for everyone), and each slot's peer machine (a promise blocks promotions against it).
   */
  private startPeers(keeper: LeaseKeeper, slots: MachineSlots): PeerLink {
    const peers = new PeerLink({
      certificates: this.opts.certificates,
      machine: this.opts.machine,
      port: this.opts.ports.peer,
      intervalMs: leaseTimings(5000, 1000).peerIntervalMs,
      promiseMs: () => (this.link?.state.phase === 'connected' ? this.link.state.leaseMs : 5000),
      marginMs: leaseTimings(5000, 1000).failsafeMarginMs,
      coordinatorReachable: () => this.link?.coordinatorReachable() ?? false,
      coordinatorGraceUntil: () => this.link?.coordinatorGraceUntil(),
      holds: () => keeper.holds(),
      replicaPartners: () => [...new Set((this.desired?.slots ?? []).filter((d) => d.role === 'MASTER' && d.peerMachine).map((d) => d.peerMachine))],
      onFailsafe: (deadline) => keeper.setFailsafe(deadline),
      relay: (renew, timeoutMs) => (this.link ? this.link.relay(renew, timeoutMs) : Promise.reject(new UnavailableError('not connected to a coordinator yet'))),
      onRelayers: (candidates) => keeper.relayers(candidates),
      partnerReachesCoordinator: () => this.link?.reconnectNow(),
      slotPartner: (slot) => this.peerMachine(slot),
      guids: (slot, names) => slots.guidsOf(slot, names),
      syncUsers: (slot, users) => slots.userSyncOn(slot, users),
      log: this.log,
    });
    peers.start();
    return peers;
  }

  private peerMachine(slot: string): string | undefined {
    return this.desired?.slots.find((d) => d.slot === slot)?.peerMachine || undefined;
  }
}
