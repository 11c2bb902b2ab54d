// One slot's cyrmaster: written config, start (own process group, as cyrus, -D in the foreground), readiness
// (IMAP * OK on the slot IP), stop (SIGTERM, then SIGKILL of the group), crash restarts with backoff and the
// crash-loop rule, and re-adoption of a cyrmaster that outlived an agent restart. What to do on a new desired state
// is planned by planConverge (converge-plan.ts); every change of lifecycle goes through the transition table in
// lifecycle.ts, whose row names the action run here, and is logged with its reason. Its addresses, the words of its
// failures and a recovery's listener are kept by helpers of their own (address-keeper.ts, failure-words.ts,
// recover-listener.ts).
import { readFile } from 'node:fs/promises';
import { execa, type ResultPromise } from 'execa';
import { UnsafePathError, describeError, withContext, type Logger } from '@slotctl/shared';
import { asCyrus, cyrusBinary } from '../cyrus/install.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import { planConverge, type ConvergePlan } from './converge-plan.js';
import { listenAddresses, waitPortsFree } from '../preflight/ports.js';
import { prepareSlotDirs, readCyrusFile, writeSlotConfig } from './files.js';
import { slotLayout, type SlotLayout } from './layout.js';
import { recentCrashes, restartDelayMs, transition, type SlotAction, type SlotEvent, type SlotLifecycle } from './lifecycle.js';
import { isSlotMaster, pidAlive, readPidFile, signalGroup, terminateMaster, type ProcessRef } from './process.js';
import { endReplicaSessions, reloadAsMaster } from './promote-in-place.js';
import { reloadReplication } from './reload-replication.js';
import { awaitReady } from './readiness.js';
import { quiesceService } from './quiesce.js';
import { renderSlotConfig } from './render.js';
import type { SlotRuntime } from './runtime.js';
import { capMasterOutput, closeQuietly, openMasterOutput } from './master-exit.js';
import { AddressKeeper } from './address-keeper.js';
import { FailureWords } from './failure-words.js';
import { RecoverListener } from './recover-listener.js';

export type { SlotRuntime } from './runtime.js';

/** How long a stop waits for the listeners of an exited cyrmaster to be released (its children dying after it). */
const PORTS_FREE_WAIT_MS = 5000;

export class SlotSupervisor {
  lifecycle: SlotLifecycle = 'absent';
  reason = 'not in any desired state yet';
  lastError = '';
  pid: number | undefined;
  desired: AppliedSlot | undefined;
  private wantRunning = false;
  /** The temporary sync_server a master opens for a recovery (recover-listener.ts). */
  private readonly recovery: RecoverListener;
  private startGeneration: number | undefined;
  /** The slot IP and, while it runs as master, the service IP (address-keeper.ts). */
  readonly addresses: AddressKeeper;
  /** The last refusal of its files: one event, not one more with every desired state until it changes. */
  private refused = '';
  private child: ResultPromise | undefined;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private log: Logger;
  /** The config the next 'write-config' writes (set by converge before it fires 'configured'). */
  private rendered: { imapdConf: string; cyrusConf: string } | undefined;
  /** The cyrmaster a 'stop-cyrmaster' stops (the slot's own, or one found by its PID file). */
  private stopping: number | undefined;
  /** A cyrmaster already running for this slot that 'spawn' takes over instead of starting another. */
  private running: number | undefined;
  /** Stopped by the fence and not started since: its next start (the lease back) is counted as a resume. */
  private fencedStop = false;
  /** The checks before start that hold it down, and the words of a cyrmaster's exit (failure-words.ts). */
  private readonly words: FailureWords;
  /** A replica reloaded as master: its children that read the replica's settings, stopped once it serves. */
  private replicaChildren: ProcessRef[] = [];
  /** The cyrmaster promoted in place (converge-plan.ts `reloaded`: the next change of services restarts it). */
  private reloadedPid: number | undefined;

  /** Each row's action of the lifecycle table (lifecycle.ts), run after its state change. */
  private readonly actions: Record<SlotAction, () => void | Promise<void>> = {
    none: () => undefined,
    'write-config': () => this.writeConfig(),
    spawn: () => this.spawn(),
    'reload-as-master': () => this.reloadAsMaster(),
    'stop-cyrmaster': () => this.stopCyrmaster(),
    'schedule-restart': () => this.scheduleRestart(),
    'give-up': () => this.addresses.releaseService(),
    fence: () => this.kill(),
    forget: () => this.addresses.releaseAll(this.desired?.slotIp),
  };

  constructor(readonly name: string, private readonly rt: SlotRuntime) {
    this.log = withContext(rt.log, { slot: name });
    this.addresses = new AddressKeeper(this, rt, this.log);
    this.words = new FailureWords(this, rt, this.log);
    this.recovery = new RecoverListener(this, rt, this.log);
  }

  /** The recovery whose temporary sync_server this master has open ('' = none). */
  get recoverListening(): string {
    return this.recovery.listening;
  }

  get layout(): SlotLayout | undefined {
    return this.desired && slotLayout(this.desired.dataPath, this.desired.metaPath);
  }

  /** What the coordinator is told: a master whose service IP is not on the interface does not serve. */
  get reported(): { lifecycle: SlotLifecycle; reason: string } {
    const problem = this.addresses.serviceProblem;
    if (problem && this.lifecycle === 'serving') return { lifecycle: 'starting', reason: problem };
    return { lifecycle: this.lifecycle, reason: this.reason };
  }

  get crashesInWindow(): number {
    return recentCrashes(this.crashes, performance.now(), this.rt.crashWindowMs).length;
  }

  /** Serializes everything that changes this slot: one step at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn);
    this.queue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  /**
   * Fires `event`: the lifecycle table's row for it in the current state changes the state, is logged with its
   * reason, and its action runs. An event the current state has no row for changes nothing. The returned promise is
   * the action's: awaited inside the slot's queue, not where an exit is noticed outside it.
   */
  private fire(event: SlotEvent, detail?: string): Promise<void> {
    const t = transition(this.lifecycle, event);
    if (!t) {
      this.log.debug({ event, state: this.lifecycle }, 'event does not apply in this state');
      return Promise.resolve();
    }
    const from = this.lifecycle;
    this.lifecycle = t.to;
    this.reason = detail ? `${t.reason} (${detail})` : t.reason;
    const log = withContext(this.log, { store: this.desired?.store, epoch: this.desired?.epoch });
    log.info({ from, to: t.to, event, action: t.action }, this.reason);
    this.rt.onChange();
    // the transition holds once its action has run: one that fails leaves the slot where it was (a config not
    // written is not 'configured', a failed slot keeps its crash-loop hold), unless its action moved it on itself
    const failed = (err: Error) => {
      if (this.lifecycle === t.to) this.lifecycle = from;
      this.reason = this.lastError = `${t.action} failed: ${err.message}`;
      this.log.error({ action: t.action, err: err.message }, this.lastError);
      this.rt.onChange();
      return Promise.reject(err);
    };
    try {
      return Promise.resolve(this.actions[t.action]()).catch(failed);
    } catch (err) {
      return failed(err as Error);
    }
  }

  /** Adopts a cyrmaster left running by an earlier agent, if its PID file points at this slot's master. */
  adopt(applied: AppliedSlot): Promise<boolean> {
    return this.serial(async () => {
      this.desired = applied;
      const layout = this.layout!;
      const pid = await readPidFile(layout.pidFile);
      if (!pid || !pidAlive(pid) || !isSlotMaster(pid, layout.imapdConf)) return false;
      this.pid = pid;
      this.lifecycle = 'serving';
      this.wantRunning = true;
      this.addresses.adopted(applied);
      this.reason = `re-adopted running cyrmaster ${pid} (agent restart does not restart Cyrus)`;
      this.log.info({ pid }, this.reason);
      this.watchAdopted(pid);
      this.rt.onChange();
      return true;
    });
  }

  /**
   * Converges to `desired` (run or stopped). A changed config of a running slot means stop, rewrite, start — except a
   * serving replica promoted to master, which reloads in place (promote-in-place.ts). A master never becomes a replica
   * under a running cyrmaster: it drains and stops first.
   */
  converge(desired: AppliedSlot, run: boolean, startGeneration = 0, recoverListen = ''): Promise<void> {
    return this.serial(async () => {
      const before = this.desired;
      const retry = this.startGeneration !== undefined && startGeneration !== this.startGeneration;
      this.startGeneration = startGeneration;
      this.desired = desired;
      this.wantRunning = run;
      const listen = desired.role === 'MASTER' && recoverListen !== '';
      const rendered = renderSlotConfig({ slot: this.name, desired, ports: this.rt.ports, auth: this.rt.auth, recoverListen: listen });
      const layout = this.layout!;
      const onDisk = await Promise.all([readFile(layout.imapdConf, 'utf8').catch(() => ''), readFile(layout.cyrusConf, 'utf8').catch(() => '')]);
      // only a replica becoming master is compared with what it runs (a promotion in place): no render otherwise
      const renderedBefore = before?.role === 'REPLICA' && desired.role === 'MASTER' ? renderSlotConfig({ slot: this.name, desired: before, ports: this.rt.ports, auth: this.rt.auth }) : undefined;
      // a slot held down by a failed check tries again with every desired state
      const plan = planConverge({ lifecycle: this.lifecycle, hasPid: this.pid !== undefined, before, desired, run, retry: retry || this.words.gate.blocked, onDisk, rendered, recoverListen, renderedBefore, mayServe: this.rt.mayServeMaster(), reloaded: this.pid !== undefined && this.pid === this.reloadedPid });
      if (plan.kind === 'toggle-recover-listener') return this.recovery.toggle(desired, layout, rendered.cyrusConf, plan.op);
      if (plan.kind === 'rewrite-header') {
        const write = writeSlotConfig({ slot: this.name, desired, layout, rendered, auth: this.rt.auth, disks: this.rt.disks() });
        if (!(await write.then(() => true, (err: unknown) => this.refuseUnsafe(err, () => this.stopNow('its files are unsafe'))))) return;
        this.log.info({ epoch: desired.epoch, role: desired.role }, `${plan.why}: config header rewritten, cyrmaster keeps running`);
        return;
      }
      if (plan.kind === 'promote-in-place') return this.promoteInPlace(plan, rendered, before);
      if (plan.kind === 'reload-sync') return this.reloadReplication(plan, rendered, before);
      return this.runSteps(plan, rendered, before);
    });
  }

  /** The steps of an ordinary convergence (stop, write, start), as planned. */
  private async runSteps(plan: Extract<ConvergePlan, { kind: 'steps' }>, rendered: { imapdConf: string; cyrusConf: string }, before: AppliedSlot | undefined): Promise<void> {
    const desired = this.desired!;
    this.recovery.want(plan.recoverWanted);
    // a replica promoted: its store's address is probed while it stops (the probe is a wait, the stop is work), and
    // the bind right after takes that probe's word (EARLY_PROBE_VALID_MS) instead of waiting out another
    if (plan.stop && plan.start && desired.role === 'MASTER' && before?.role === 'REPLICA') void this.rt.vip.probeEarly?.(desired.serviceIp);
    if (plan.stop) await this.stopNow(plan.stop);
    if (plan.configure) {
      this.rendered = rendered;
      const written = this.fire('configured', `${desired.role.toLowerCase()} epoch ${desired.epoch}`);
      if (!(await written.then(() => true, (err: unknown) => this.refuseUnsafe(err)))) return;
    }
    if (plan.clearFailed) await this.fire('stop', 'operator stop');
    if (plan.start) {
      this.crashes = [];
      await this.startNow();
    }
  }

  /**
   * A serving replica promoted without a restart (promote-in-place.ts). If the reload cannot be done (its address not
   * taken, a write that failed), the ordinary way: stop, rewrite, start as master.
   */
  private async promoteInPlace(plan: Extract<ConvergePlan, { kind: 'promote-in-place' }>, rendered: { imapdConf: string; cyrusConf: string }, before: AppliedSlot | undefined): Promise<void> {
    const d = this.desired!;
    this.recovery.want(plan.recoverWanted);
    // the duplicate-address probe (a wait) runs while the config is written (work)
    void this.rt.vip.probeEarly?.(d.serviceIp);
    this.rendered = rendered;
    this.crashes = [];
    const reloaded = await this.fire('promote', `master epoch ${d.epoch}`).then(
      () => true,
      (err: unknown) => (err instanceof UnsafePathError ? this.refuseUnsafe(err, () => this.stopNow('its files are unsafe')).then(() => undefined) : false),
    );
    if (reloaded === undefined) return;
    if (!reloaded) {
      this.log.warn({ store: d.store, epoch: d.epoch, err: this.lastError }, 'promotion in place failed: restarting as master');
      return this.runSteps({ kind: 'steps', why: 'promotion in place failed', recoverWanted: plan.recoverWanted, stop: 'config changed', configure: true, clearFailed: false, start: true }, rendered, before);
    }
    await this.judgeStart(this.pid, () => {
      this.reloadedPid = this.pid;
      const ended = endReplicaSessions(this.replicaChildren);
      this.replicaChildren = [];
      return `promoted in place${ended ? `; ${ended} session(s) begun as replica stopped` : ''}`;
    });
  }

  /** A serving master's replication targets changed (reload-replication.ts); a reload that fails restarts it. */
  private async reloadReplication(plan: Extract<ConvergePlan, { kind: 'reload-sync' }>, rendered: { imapdConf: string; cyrusConf: string }, before: AppliedSlot | undefined): Promise<void> {
    const d = this.desired!;
    this.rendered = rendered;
    try {
      const endSessions = Boolean(d.moveTargetIp) && !before?.moveTargetIp;
      const ended = await reloadReplication({ pid: this.pid!, endSessions, write: () => writeSlotConfig({ slot: this.name, desired: d, layout: this.layout!, rendered, auth: this.rt.auth, disks: this.rt.disks() }) });
      this.log.info({ epoch: d.epoch, peerIp: d.peerIp, moveTargetIp: d.moveTargetIp ?? '' }, `${plan.why}: cyrmaster reloaded, ${ended.clients} sync_client(s) of the old settings ended${endSessions ? `, ${ended.sessions} IMAP/POP session(s) begun before the second channel ended` : ''}`);
    } catch (err) {
      if (err instanceof UnsafePathError) return void (await this.refuseUnsafe(err, () => this.stopNow('its files are unsafe')));
      this.log.warn({ err: describeError(err), epoch: d.epoch }, 'reloading the replication settings failed: restarting the master');
      return this.runSteps({ kind: 'steps', why: 'reload failed', recoverWanted: '', stop: 'config changed', configure: true, clearFailed: false, start: true }, rendered, before);
    }
  }

  /** The 'reload-as-master' action: master config written, service IP taken, SIGHUP (promote-in-place.ts). */
  private async reloadAsMaster(): Promise<void> {
    const d = this.desired!;
    this.replicaChildren = await reloadAsMaster({
      pid: this.pid!,
      serviceIp: d.serviceIp,
      write: () => writeSlotConfig({ slot: this.name, desired: d, layout: this.layout!, rendered: this.rendered!, auth: this.rt.auth, disks: this.rt.disks() }),
      take: () => this.addresses.take(d),
    });
  }

  /** Files found unsafe outside the slot's own steps (its sync logs' quarantine): the slot fails, as in refuseUnsafe. */
  refuse(err: UnsafePathError): Promise<void> {
    return this.serial(async () => void (await this.refuseUnsafe(err, () => this.stopNow('its files are unsafe'))));
  }

  /** Stops cyrmaster (and releases the service IP) and forgets the slot; files stay. */
  remove(): Promise<void> {
    return this.serial(async () => {
      this.wantRunning = false;
      if (this.lifecycle === 'starting' || this.lifecycle === 'serving') await this.stopNow('removed from the desired state');
      await this.fire('removed');
    });
  }

  /** Stops cyrmaster and keeps it stopped (agent exit with --stop-slots-on-exit, replay, tests). */
  stop(why: string): Promise<void> {
    return this.serial(async () => {
      this.wantRunning = false;
      if (this.lifecycle === 'starting' || this.lifecycle === 'serving') await this.stopNow(why);
    });
  }

  /**
   * The lease ran out: a master stops at once, without the LMTP drain (the fence process kills it at the same
   * moment; this keeps the agent's own view right and its service IP released). It restarts with `resume`.
   */
  fence(): Promise<void> {
    return this.serial(async () => {
      if (this.desired?.role !== 'MASTER' || !(this.lifecycle === 'starting' || this.lifecycle === 'serving')) return;
      clearTimeout(this.restartTimer);
      await this.fire('fenced', this.pid ? `pid ${this.pid}` : undefined);
    });
  }

  /** The 'fence' action: cyrmaster's group killed at once, and the service IP released. */
  private async kill(): Promise<void> {
    const pid = this.pid;
    this.pid = undefined;
    this.child = undefined;
    if (pid) signalGroup(pid, 'SIGKILL');
    clearInterval(this.pollTimer);
    this.rt.metrics?.fenceAction('master-stopped');
    this.fencedStop = true;
    await this.addresses.releaseService();
  }

  /** The lease is held again: a slot that should run and does not (fenced, or held back at start) starts. */
  resume(): Promise<void> {
    return this.serial(async () => {
      if (this.wantRunning && this.desired && (this.lifecycle === 'configured' || this.lifecycle === 'stopped')) await this.startNow();
    });
  }

  /** Stops watching; leaves cyrmaster running (agent restart must not restart Cyrus). */
  detach(): void {
    clearTimeout(this.restartTimer);
    clearInterval(this.pollTimer);
    this.child?.unref();
  }

  /**
   * Level-triggered, every second and after every desired state: the addresses this slot holds are on the
   * interface (`bound`), and its store's service IP is nowhere else on it; each drift repaired is logged and raised
   * as an event. Also: a slot counted as running whose cyrmaster is gone is a crash, whatever missed its exit.
   */
  async reconcile(bound: ReadonlySet<string> | undefined): Promise<void> {
    const d = this.desired;
    if (!d) return;
    // this agent's own child that died is a zombie (gone to pidAlive) until Node reaps it and reports its exit with
    // the signal: that report says more, so the check leaves it the word (ci-170: a SIGKILL was reported as "gone")
    const exitComing = this.child !== undefined && this.child.pid === this.pid && this.child.exitCode === null && this.child.signalCode === null;
    if ((this.lifecycle === 'serving' || this.lifecycle === 'starting') && this.pid && !pidAlive(this.pid) && !this.words.explaining && !exitComing) this.crashed('cyrmaster is gone (found by the periodic check)');
    if (this.lifecycle === 'failed' && this.wantRunning && this.words.gate.takeDue()) {
      void this.serial(async () => {
        if (this.lifecycle === 'failed' && this.wantRunning) await this.startNow();
      });
    }
    if (this.rt.outputDir) capMasterOutput(this.rt.outputDir, this.name);
    if (!bound) return;
    // held is held until the supervisor itself releases it: a stopping master keeps its address while the LMTP
    // deliveries in flight finish (quiesce), and the reconciliation must not take it away under them
    await this.addresses.reconcile(bound, d, d.role === 'MASTER' && this.rt.mayServeMaster());
  }

  /** The 'write-config' action: the config converge rendered; a replica first lets go of its store's address. */
  private async writeConfig(): Promise<void> {
    const d = this.desired!;
    // a replica never holds its store's address (an old master back after a crash may still have it bound)
    if (d.role === 'REPLICA') await this.addresses.releaseForReplica(d.serviceIp);
    await writeSlotConfig({ slot: this.name, desired: d, layout: this.layout!, rendered: this.rendered!, auth: this.rt.auth, disks: this.rt.disks() });
  }

  /** An UnsafePathError fails the slot (`stop` first stops it) and says why; false. Any other error is thrown on. */
  private async refuseUnsafe(err: unknown, stop?: () => Promise<void>): Promise<false> {
    if (!(err instanceof UnsafePathError)) throw err;
    this.lastError = err.message;
    this.log.error({ path: err.path, err: err.message }, 'slot refused: its files are unsafe for root to touch');
    if (err.message !== this.refused) this.rt.onEvent('unsafe-path', describeError(err));
    this.refused = err.message;
    await stop?.();
    await this.fire('unsafe', err.message);
    return false;
  }

  private async startNow(): Promise<void> {
    const layout = this.layout!;
    const d = this.desired!;
    // A cyrmaster that is already running for this slot (e.g. adopted late) is not started twice.
    const existing = await readPidFile(layout.pidFile);
    if (d.role === 'MASTER' && !this.rt.mayServeMaster()) {
      if (this.lifecycle === 'starting') await this.fire('fenced', 'restart after a crash without a lease');
      this.reason = 'waiting for the lease (after a fence: and the coordinator confirming this desired state) before serving as master';
      this.log.info({ store: d.store, epoch: d.epoch }, this.reason);
      this.rt.onChange();
      return;
    }
    // every start prepares the directories again: one swapped for a link while the slot was down is refused here
    if (!(await prepareSlotDirs(layout, this.rt.disks()).then(() => true, (err: unknown) => this.refuseUnsafe(err)))) return;
    this.refused = '';
    // before its addresses are taken: a slot that cannot start must not hold its store's service IP
    if (!(await this.passesPreflight(existing))) return;
    if (!(await this.addresses.take(d))) {
      // Level-triggered: try again while the slot should run (the other holder may be releasing it right now).
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => {
        void this.serial(async () => {
          if (this.wantRunning && (this.lifecycle === 'configured' || this.lifecycle === 'stopped')) await this.startNow();
        });
      }, 2000);
      return;
    }
    this.running = existing && pidAlive(existing) && isSlotMaster(existing, layout.imapdConf) ? existing : undefined;
    if (this.fencedStop) this.rt.metrics?.fenceAction('master-resumed');
    this.fencedStop = false;
    await this.fire('start');
    await this.judgeStart(this.pid);
  }

  /**
   * Waits until the cyrmaster `spawned` (started or reloaded) serves: ready, or a failed start (a crash: restarted
   * after backoff). `onReady` runs before it counts as serving and may add words to the reason.
   */
  private async judgeStart(spawned: number | undefined, onReady?: () => string): Promise<void> {
    const d = this.desired!;
    const ready = await awaitReady({
      pid: spawned,
      slotIp: d.slotIp,
      serviceIp: d.role === 'MASTER' ? d.serviceIp : undefined,
      ports: this.rt.ports,
      // each start that timed out gives the next one longer (a slow host, a long recovery) before it is judged
      timeoutMs: this.rt.readyTimeoutMs * (1 + this.crashesInWindow),
      current: () => this.lifecycle === 'starting' && this.pid === spawned,
    });
    if (ready.outcome === 'failed') this.crashed(ready.why);
    if (ready.outcome !== 'ready') return;
    const more = onReady?.();
    this.recovery.started();
    // where a slow start went (greeting on the slot IP, then LMTP on the service IP), in the transition's reason
    const timing = `greeted after ${ready.greetedMs} ms${d.role === 'MASTER' ? `, LMTP on ${d.serviceIp} after ${ready.servingMs} ms` : ''}`;
    await this.fire('ready', `pid ${this.pid}, ${timing}${more ? `, ${more}` : ''}`);
  }

  /** The 'spawn' action: cyrmaster started in its own process group as cyrus, or the one already running taken over. */
  private spawn(): void {
    const layout = this.layout!;
    if (this.running) {
      this.pid = this.running;
      this.running = undefined;
      this.watchAdopted(this.pid);
      return;
    }
    const { file, args } = asCyrus(cyrusBinary('master'), ['-C', layout.imapdConf, '-M', layout.cyrusConf, '-p', layout.pidFile, '-D']);
    const output = this.rt.outputDir === undefined ? undefined : openMasterOutput(this.rt.outputDir, this.name);
    // execa hands a descriptor to the child as it is (its types only name 3–9)
    const to = (output ?? 'ignore') as 'ignore';
    const start = () => execa(file, args, { detached: true, stdin: 'ignore', stdout: to, stderr: to, cleanup: false, reject: false });
    let child: ReturnType<typeof start>;
    try {
      child = start();
    } finally {
      closeQuietly(output); // the child has its own copy
    }
    this.child = child;
    this.pid = child.pid;
    this.words.startedAt = Date.now();
    void child.then((result) => this.onExit(child, result.exitCode, result.signal));
  }

  private async stopNow(why: string): Promise<void> {
    // "stopped" must mean stopped: a cyrmaster of this slot that we lost track of is found by its PID file.
    let pid = this.pid;
    if (!pid && this.layout) {
      const fromFile = await readPidFile(this.layout.pidFile);
      if (fromFile && pidAlive(fromFile) && isSlotMaster(fromFile, this.layout.imapdConf)) pid = fromFile;
    }
    clearTimeout(this.restartTimer);
    this.stopping = pid;
    await this.fire('stop', why);
  }

  /**
   * The 'stop-cyrmaster' action. A master first lets the deliveries in flight finish (quiesce.ts), then gives up its
   * service IP, so that no new connection reaches it: measured, a cyrmaster whose listen socket kept receiving
   * connections (a client retrying every 5 ms) span during its graceful shutdown until the SIGKILL at the stop
   * timeout. MTAs retry LMTP that got no 250; IMAP sessions end with the stop anyway.
   */
  private async stopCyrmaster(): Promise<void> {
    const pid = this.stopping;
    this.stopping = undefined;
    const ip = this.addresses.heldServiceIp;
    if (pid && pidAlive(pid) && ip && this.layout) await quiesceService({ pid, ip, lmtpPort: this.rt.ports.lmtp, layout: this.layout, log: this.log });
    await this.addresses.releaseService();
    if (pid && pidAlive(pid)) {
      const child = this.child?.pid === pid ? this.child : undefined;
      // what it listens on, from the config it runs with (the next start may render another)
      const listening = this.layout ? listenAddresses(await readCyrusFile(this.layout, this.layout.cyrusConf).catch(() => '')) : [];
      await terminateMaster(pid, child, this.rt.stopTimeoutMs, () => this.log.warn({ pid, timeoutMs: this.rt.stopTimeoutMs }, 'cyrmaster did not stop in time: SIGKILL to its process group'));
      // "stopped" means its ports are free: a start right after (a replica promoted) must not find its own listener
      // held by a child still dying, whose holder the preflight cannot name (the soak: new masters FAILED)
      const started = performance.now();
      if (!(await waitPortsFree(listening, PORTS_FREE_WAIT_MS))) this.log.warn({ pid, waitedMs: PORTS_FREE_WAIT_MS, addresses: listening }, "cyrmaster is gone but its listeners are not: the next start's checks will say who holds them");
      else if (performance.now() - started > 100) this.log.info({ pid, waitedMs: Math.round(performance.now() - started) }, "cyrmaster's listeners were released after it exited");
    }
    clearInterval(this.pollTimer);
    this.child = undefined;
    this.pid = undefined;
    await this.fire('exited');
  }

  /** An adopted cyrmaster is not our child: its exit is noticed by polling. */
  private watchAdopted(pid: number): void {
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(() => {
      if (!pidAlive(pid)) {
        clearInterval(this.pollTimer);
        if (this.pid === pid && (this.lifecycle === 'serving' || this.lifecycle === 'starting')) this.crashed('adopted cyrmaster exited');
      }
    }, 500);
  }

  /** Our cyrmaster exited unasked: its own words (stderr, syslog) become the slot's error and an event. */
  private async onExit(child: ResultPromise, code: number | undefined, signal: string | undefined): Promise<void> {
    const unasked = () => this.child === child && (this.lifecycle === 'starting' || this.lifecycle === 'serving');
    if (!unasked()) return; // stopNow or fence handles it
    const pid = child.pid ?? 0;
    const why = await this.words.ofExit(pid, code, signal);
    if (!unasked()) return;
    withContext(this.log, { store: this.desired?.store, epoch: this.desired?.epoch }).error({ pid, code, signal }, why);
    this.rt.onEvent('cyrmaster-exited', why);
    this.crashed(why);
  }

  /**
   * The checks before start (failure-words.ts). A failure fails the slot with their sentences and starts nothing;
   * reconcile() and the next desired state look again.
   */
  private async passesPreflight(existing: number | undefined): Promise<boolean> {
    const { problem, changed } = await this.words.preflight(this.layout!, existing);
    if (!problem) return true;
    // a failed slot failing the same way again stays as it is (no transition logged every few seconds)
    if (this.lifecycle !== 'failed' || changed) await this.fire('blocked', problem);
    this.rt.onChange();
    return false;
  }

  /**
   * cyrmaster is gone without being asked (or never became ready): without a lease that is the fence's doing, not a
   * crash; otherwise it is counted, and the crash-loop rule decides between a restart after backoff and giving up.
   * Called where an exit is noticed, inside the slot's queue or not: the action it fires is not awaited.
   */
  private crashed(why: string): void {
    const pid = this.pid;
    if (pid) signalGroup(pid, 'SIGKILL');
    this.child = undefined;
    this.pid = undefined;
    const logged = () => undefined; // an action that failed is logged and reported by fire
    if (this.desired?.role === 'MASTER' && !this.rt.mayServeMaster()) {
      // the fence process got there first: not a crash, and no restart without a lease
      void this.fire('fenced', why).catch(logged);
      return;
    }
    this.crashes.push(performance.now());
    this.crashes = recentCrashes(this.crashes, performance.now(), this.rt.crashWindowMs);
    this.lastError = why;
    if (this.crashes.length >= this.rt.crashLimit) {
      void this.fire('crash-loop', `${this.crashes.length} crashes in ${this.rt.crashWindowMs / 1000} s; last: ${why}`).catch(logged);
      return;
    }
    void this.fire('crashed', `${why}; restart ${this.crashes.length} in ${restartDelayMs(this.crashes.length)} ms`).catch(logged);
  }

  /** The 'schedule-restart' action: cyrmaster started again after the backoff of this many crashes in the window. */
  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => {
      void this.serial(async () => {
        if (this.lifecycle !== 'starting' || !this.wantRunning) return;
        this.rt.metrics?.cyrusRestarted(this.name);
        await this.startNow();
      });
    }, restartDelayMs(this.crashes.length));
  }
}
