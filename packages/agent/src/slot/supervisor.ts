// One slot's cyrmaster: written config, start (own process group, as cyrus, -D in the foreground), readiness
// (IMAP * OK on the slot IP), stop (SIGTERM, then SIGKILL of the group), crash restarts with backoff and the
// crash-loop rule, and re-adoption of a cyrmaster that outlived an agent restart. Every change of lifecycle goes
// through the transition table in lifecycle.ts and is logged with its reason.
import { chown, mkdir, readFile } from 'node:fs/promises';
import { execa, type ResultPromise } from 'execa';
import { writeFileAtomic, withContext, type Logger } from '@slotctl/shared';
import { asCyrus, cyrusBinary, CYRUS_USER, CYRUS_GROUP } from '../cyrus/install.js';
import type { AppliedSlot } from '../state/apply-plan.js';
import type { VipDriver } from '../vip/driver.js';
import { SlotAddresses } from '../vip/slot-addresses.js';
import { CONF_SUBDIRS, slotLayout, type SlotLayout } from './layout.js';
import { recentCrashes, restartDelayMs, transition, type SlotEvent, type SlotLifecycle } from './lifecycle.js';
import { imapGreets, isSlotMaster, pidAlive, readPidFile, signalGroup, socketsAt, tcpAccepts } from './process.js';
import { differsOnlyInHeader, differsOnlyInRecoverListener, renderSlotConfig, saslRealm, sasldbPath, type AuthConfig, type Ports } from './render.js';

/** How long a master that greets on its slot IP may take to accept LMTP on its service IP before it is started again. */
const SERVICE_LISTEN_GRACE_MS = 2000;

export interface SlotRuntime {
  ports: Ports;
  auth: AuthConfig;
  vip: VipDriver;
  log: Logger;
  /** Called after every change worth reporting. */
  onChange: () => void;
  /** Something an operator must hear about at once (an address conflict). */
  onEvent: (kind: string, message: string) => void;
  /** False while the machine holds no lease: a master must not start (or restart after a crash). */
  mayServeMaster: () => boolean;
  crashLimit: number;
  crashWindowMs: number;
  stopTimeoutMs: number;
  readyTimeoutMs: number;
}

/**
 * How long a stopping master waits for its LMTP listener to close and the deliveries in flight on its service IP to
 * end. Measured on a 2-core host: the listener outlived the SIGHUP by up to 3.0 s when many slots stopped at once,
 * and a delivery waited ~3 s behind a stalled rolling sync_client (restarted after 2 s without progress); 3 s was
 * too short there, and a delivery cut after its data comes back from the MTA as a second copy. MTAs wait minutes for
 * that reply (Postfix's lmtp_data_done_timeout: 600 s), so waiting longer loses nothing; the bound only keeps a hung
 * delivery from holding the stop, and only a stop with deliveries in flight takes it.
 */
const LMTP_DRAIN_MS = 15_000;

let cyrusIds: { uid: number; gid: number } | undefined;
export async function cyrusOwner(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!cyrusIds) {
    const passwd = await readFile('/etc/passwd', 'utf8');
    const group = await readFile('/etc/group', 'utf8');
    const uid = Number(passwd.split('\n').find((l) => l.startsWith(`${CYRUS_USER}:`))?.split(':')[2]);
    const gid = Number(group.split('\n').find((l) => l.startsWith(`${CYRUS_GROUP}:`))?.split(':')[2]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('user cyrus or group mail is missing: is cyrus-imapd installed?');
    cyrusIds = { uid, gid };
  }
  return cyrusIds;
}

export class SlotSupervisor {
  lifecycle: SlotLifecycle = 'absent';
  reason = 'not in any desired state yet';
  lastError = '';
  pid: number | undefined;
  desired: AppliedSlot | undefined;
  private wantRunning = false;
  /** The recovery whose temporary sync_server this master has open ('' = none). */
  recoverListening = '';
  private recoverWanted = '';
  private startGeneration: number | undefined;
  /** The slot IP and, while it runs as master, the service IP it holds; reconciled with the interface. */
  readonly addresses: SlotAddresses;
  private lastDrift = '';
  private child: ResultPromise | undefined;
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private log: Logger;

  constructor(readonly name: string, private readonly rt: SlotRuntime) {
    this.log = withContext(rt.log, { slot: name });
    this.addresses = new SlotAddresses(rt.vip);
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
    return recentCrashes(this.crashes, Date.now(), this.rt.crashWindowMs).length;
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

  private fire(event: SlotEvent, detail?: string): void {
    const t = transition(this.lifecycle, event);
    if (!t) {
      this.log.debug({ event, state: this.lifecycle }, 'event does not apply in this state');
      return;
    }
    const from = this.lifecycle;
    this.lifecycle = t.to;
    this.reason = detail ? `${t.reason} (${detail})` : t.reason;
    const log = withContext(this.log, { store: this.desired?.store, epoch: this.desired?.epoch });
    log.info({ from, to: t.to, event, action: t.action }, this.reason);
    this.rt.onChange();
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
      this.addresses.adopted(applied.slotIp, applied.role === 'MASTER' ? applied.serviceIp : undefined);
      this.reason = `re-adopted running cyrmaster ${pid} (agent restart does not restart Cyrus)`;
      this.log.info({ pid }, this.reason);
      this.watchAdopted(pid);
      this.rt.onChange();
      return true;
    });
  }

  /**
   * Converges to `desired` (run or stopped). A changed config of a running slot means stop, rewrite, start:
   * the role of a running cyrmaster never changes under it.
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
      const running = this.lifecycle === 'starting' || this.lifecycle === 'serving';
      if (running && run && this.pid && onDisk[0] === rendered.imapdConf && differsOnlyInRecoverListener(onDisk[1], rendered.cyrusConf)) {
        await this.toggleRecoverListener(layout, rendered.cyrusConf, listen ? recoverListen : '');
        return;
      }
      // a new epoch with the same role and the same settings (a replaced replica keeps its IP): no restart, the
      // running cyrmaster already does what the new config says; only the header is rewritten
      const sameElse = (a: string, b: string) => a === b || differsOnlyInHeader(a, b);
      if (running && run && this.pid && before?.role === desired.role && (onDisk[0] !== rendered.imapdConf || onDisk[1] !== rendered.cyrusConf) && sameElse(onDisk[0], rendered.imapdConf) && sameElse(onDisk[1], rendered.cyrusConf)) {
        await this.writeConfig(layout, rendered);
        this.log.info({ epoch: desired.epoch, role: desired.role }, 'new epoch, same role and settings: config header rewritten, cyrmaster keeps running');
        return;
      }
      this.recoverWanted = listen ? recoverListen : '';
      if (!listen) this.recoverListening = '';
      const configChanged = onDisk[0] !== rendered.imapdConf || onDisk[1] !== rendered.cyrusConf;
      if (running && (configChanged || !run)) await this.stopNow(configChanged ? 'config changed' : 'desired stopped');
      if (configChanged || this.lifecycle === 'absent') {
        // a replica never holds its store's address (an old master back after a crash may still have it bound)
        if (desired.role === 'REPLICA') await this.addresses.releaseUnheld(desired.serviceIp).catch((err: Error) => this.log.warn({ ip: desired.serviceIp, err: err.message }, 'could not release the service IP of a replica'));
        await this.writeConfig(layout, rendered);
        this.fire('configured', `${desired.role.toLowerCase()} epoch ${desired.epoch}`);
      }
      const epochMoved = before !== undefined && before.epoch !== desired.epoch;
      if (this.lifecycle === 'failed' && !run) this.fire('stop', 'operator stop');
      if (this.lifecycle === 'failed' && !epochMoved && !retry) return; // until the desired state changes or an operator starts it
      if (run && !(this.lifecycle === 'starting' || this.lifecycle === 'serving')) {
        this.crashes = [];
        await this.startNow();
      }
    });
  }

  /**
   * Opens or closes the recovery listener of a running master without a restart: cyrus.conf rewritten, SIGHUP
   * (measured: listening after 0.13 s). Open means the port accepts.
   */
  private async toggleRecoverListener(layout: SlotLayout, cyrusConf: string, op: string): Promise<void> {
    await writeFileAtomic(layout.cyrusConf, cyrusConf, 0o640);
    const owner = await cyrusOwner();
    if (owner) await chown(layout.cyrusConf, owner.uid, owner.gid);
    process.kill(this.pid!, 'SIGHUP');
    const d = this.desired!;
    const log = withContext(this.log, { store: d.store, epoch: d.epoch, op: op || this.recoverListening });
    if (!op) {
      this.recoverListening = '';
      log.info('recovery listener closed (SIGHUP)');
      this.rt.onChange();
      return;
    }
    for (let i = 0; i < 100 && !(await tcpAccepts(d.slotIp, this.rt.ports.sync, 200)); i++) await new Promise((r) => setTimeout(r, 50));
    this.recoverListening = op;
    log.info({ ip: d.slotIp, port: this.rt.ports.sync }, 'recovery listener open (SIGHUP): a returned old master may push its mailboxes');
    this.rt.onChange();
  }

  /** Stops cyrmaster (and releases the service IP) and forgets the slot; files stay. */
  remove(): Promise<void> {
    return this.serial(async () => {
      this.wantRunning = false;
      if (this.lifecycle === 'starting' || this.lifecycle === 'serving') await this.stopNow('removed from the desired state');
      await this.addresses.releaseAll(this.desired?.slotIp).catch((err: Error) => this.log.warn({ err: err.message }, 'could not release the slot\'s addresses'));
      this.fire('removed');
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
      const pid = this.pid;
      this.pid = undefined;
      this.child = undefined;
      if (pid) signalGroup(pid, 'SIGKILL');
      await this.releaseServiceIp();
      clearInterval(this.pollTimer);
      this.fire('fenced', pid ? `pid ${pid}` : undefined);
    });
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
   * Takes the slot's own IP, and the store's service IP for a master, before cyrmaster starts (Cyrus listens on
   * them). An address someone else answers for is refused: the slot does not start, and the operator hears of it.
   */
  private async takeAddresses(d: AppliedSlot): Promise<boolean> {
    try {
      await this.addresses.take(d.slotIp, d.role === 'MASTER' ? d.serviceIp : undefined);
      return true;
    } catch (err) {
      this.lastError = `cannot take its addresses: ${(err as Error).message}`;
      this.log.error({ slotIp: d.slotIp, serviceIp: d.role === 'MASTER' ? d.serviceIp : undefined, err: (err as Error).message }, 'not starting: address not taken');
      this.rt.onEvent((err as { code?: string }).code === 'AddressConflict' ? 'address-conflict' : 'address-error', this.lastError);
      this.rt.onChange();
      return false;
    }
  }

  private async releaseServiceIp(): Promise<void> {
    const ip = this.addresses.heldServiceIp;
    try {
      await this.addresses.releaseService();
    } catch (err) {
      this.lastError = `cannot release ${ip}: ${(err as Error).message}`;
      this.log.error({ ip, err: (err as Error).message }, 'service IP not released');
    }
  }

  /**
   * Level-triggered, every second and after every desired state: the addresses this slot holds are on the
   * interface (`bound`), and its store's service IP is nowhere else on it; each drift repaired is logged and raised
   * as an event. Also: a slot counted as running whose cyrmaster is gone is a crash, whatever missed its exit.
   */
  async reconcile(bound: ReadonlySet<string> | undefined): Promise<void> {
    const d = this.desired;
    if (!d) return;
    if ((this.lifecycle === 'serving' || this.lifecycle === 'starting') && this.pid && !pidAlive(this.pid)) this.crashed('cyrmaster is gone (found by the periodic check)');
    if (!bound) return;
    // held is held until the supervisor itself releases it: a stopping master keeps its address while the LMTP
    // deliveries in flight finish (quiesce), and the reconciliation must not take it away under them
    const mayServe = d.role === 'MASTER' && this.rt.mayServeMaster();
    const hadProblem = this.addresses.serviceProblem;
    const drifts = await this.addresses.reconcile(bound, { serviceIp: d.serviceIp }, mayServe);
    if (drifts.length === 0) this.lastDrift = '';
    for (const drift of drifts) {
      const what =
        drift.drift === 'missing'
          ? `${drift.kind} ${drift.ip} was missing from the interface: ${drift.repaired ? 'bound again' : `could not bind it again (${drift.error})`}`
          : `${drift.kind} ${drift.ip} was on the interface although this slot does not serve it as master: ${drift.repaired ? 'released' : `could not release it (${drift.error})`}`;
      withContext(this.log, { store: d.store, epoch: d.epoch }).warn({ ip: drift.ip, drift: drift.drift, repaired: drift.repaired }, what);
      // a repair is an event each time; a failure that repeats every second is one event until it changes
      if (drift.repaired || what !== this.lastDrift) this.rt.onEvent(drift.repaired ? 'address-repaired' : 'address-error', what);
      this.lastDrift = drift.repaired ? '' : what;
    }
    if (hadProblem !== this.addresses.serviceProblem) this.rt.onChange();
  }

  private async writeConfig(layout: SlotLayout, rendered: { imapdConf: string; cyrusConf: string }): Promise<void> {
    const owner = await cyrusOwner();
    const d = this.desired!;
    // Parents must be traversable by cyrus; the slot's own directories belong to it.
    await mkdir(d.metaPath, { recursive: true, mode: 0o755 });
    await mkdir(d.dataPath, { recursive: true, mode: 0o755 });
    const dirs = [d.metaPath, d.dataPath, layout.etcDir, layout.runDir, layout.metaPartition, layout.dataPartition, layout.confDir, ...CONF_SUBDIRS.map((d) => `${layout.confDir}/${d}`)];
    for (const dir of dirs) {
      await mkdir(dir, { recursive: true, mode: 0o750 });
      if (owner) await chown(dir, owner.uid, owner.gid);
    }
    // imapd.conf holds the sync password: readable by cyrus only.
    await writeFileAtomic(layout.imapdConf, rendered.imapdConf, 0o640);
    await writeFileAtomic(layout.cyrusConf, rendered.cyrusConf, 0o640);
    if (owner) {
      await chown(layout.imapdConf, owner.uid, owner.gid);
      await chown(layout.cyrusConf, owner.uid, owner.gid);
    }
    if (this.rt.auth.mode === 'sasldb') await this.setSyncPassword(layout, owner);
  }

  /** Production auth: the replication user's password in the slot's own sasldb (idempotent). */
  private async setSyncPassword(layout: SlotLayout, owner: { uid: number; gid: number } | undefined): Promise<void> {
    const db = sasldbPath(layout.confDir);
    const result = await execa('saslpasswd2', ['-p', '-c', '-f', db, '-u', saslRealm(this.name), this.rt.auth.syncUser], {
      input: this.rt.auth.syncPassword,
      reject: false,
      all: true,
    });
    if (result.exitCode !== 0) throw new Error(`saslpasswd2 for ${db} failed: ${result.all ?? result.exitCode}`);
    if (owner) await chown(db, owner.uid, owner.gid);
  }

  private async startNow(): Promise<void> {
    const layout = this.layout!;
    const d = this.desired!;
    // A cyrmaster that is already running for this slot (e.g. adopted late) is not started twice.
    const existing = await readPidFile(layout.pidFile);
    if (d.role === 'MASTER' && !this.rt.mayServeMaster()) {
      if (this.lifecycle === 'starting') this.fire('fenced', 'restart after a crash without a lease');
      this.reason = 'waiting for the lease before serving as master';
      this.log.info({ store: d.store, epoch: d.epoch }, this.reason);
      this.rt.onChange();
      return;
    }
    if (!(await this.takeAddresses(d))) {
      // Level-triggered: try again while the slot should run (the other holder may be releasing it right now).
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => {
        void this.serial(async () => {
          if (this.wantRunning && (this.lifecycle === 'configured' || this.lifecycle === 'stopped')) await this.startNow();
        });
      }, 2000);
      return;
    }
    this.fire('start');
    if (existing && pidAlive(existing) && isSlotMaster(existing, layout.imapdConf)) {
      this.pid = existing;
      this.watchAdopted(existing);
    } else {
      const { file, args } = asCyrus(cyrusBinary('master'), ['-C', layout.imapdConf, '-M', layout.cyrusConf, '-p', layout.pidFile, '-D']);
      const child = execa(file, args, { detached: true, stdio: 'ignore', cleanup: false, reject: false });
      this.child = child;
      this.pid = child.pid;
      void child.then((result) => this.onExit(child, result.exitCode, result.signal));
    }
    const spawned = this.pid;
    // each start that timed out gives the next one longer (a slow host, a long recovery) before it is judged
    const readyTimeoutMs = this.rt.readyTimeoutMs * (1 + this.crashesInWindow);
    const deadline = Date.now() + readyTimeoutMs;
    let deafSince: number | undefined;
    while (Date.now() < deadline && this.lifecycle === 'starting' && this.pid === spawned) {
      if (await imapGreets(d.slotIp, this.rt.ports.imap, 500)) {
        // the greeting may have been in flight while the process was killed (the fence): ready only if the process
        // spawned is still the slot's and alive; otherwise its exit is handled as a crash or a fence
        if (this.lifecycle !== 'starting' || this.pid !== spawned || !spawned || !pidAlive(spawned)) return;
        // A master serves on its store's address. cyrmaster binds its sockets once, at start (before it greets on
        // the slot IP): an address missing at that moment (released by a lease that lapsed during the start, an
        // operator) leaves it deaf there for good, although it greets, and the address put back later does not help
        // (seen: a master reported serving whose service IP refused every LMTP connection). Not ready then: started again.
        if (d.role === 'MASTER' && !(await tcpAccepts(d.serviceIp, this.rt.ports.lmtp, 300))) {
          deafSince ??= Date.now();
          if (Date.now() - deafSince > SERVICE_LISTEN_GRACE_MS) {
            this.crashed(`cyrmaster answers on ${d.slotIp} but not for its store on ${d.serviceIp}:${this.rt.ports.lmtp} (the address was missing when it bound its sockets)`);
            return;
          }
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        // started with the recovery listener in its cyrus.conf (a restart during a recovery)
        this.recoverListening = this.recoverWanted;
        this.fire('ready', `pid ${this.pid}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.lifecycle === 'starting' && this.pid === spawned) {
      // A cyrmaster that never greets stays deaf: it binds its listeners once, and one that failed (an address or
      // a port not yet free at that moment) is not retried. Left alone, the slot would sit in STARTING for good
      // (seen in CI: 180 s). A start that timed out is a failed start: killed and started again, within the crash limit.
      const alive = spawned !== undefined && pidAlive(spawned);
      this.crashed(`IMAP on ${d.slotIp}:${this.rt.ports.imap} did not answer within ${readyTimeoutMs} ms (cyrmaster pid ${spawned ?? '?'} ${alive ? 'running' : 'gone'})`);
    }
  }

  private async stopNow(why: string): Promise<void> {
    // "stopped" must mean stopped: a cyrmaster of this slot that we lost track of is found by its PID file.
    let pid = this.pid;
    if (!pid && this.layout) {
      const fromFile = await readPidFile(this.layout.pidFile);
      if (fromFile && pidAlive(fromFile) && isSlotMaster(fromFile, this.layout.imapdConf)) pid = fromFile;
    }
    clearTimeout(this.restartTimer);
    this.fire('stop', why);
    if (pid && pidAlive(pid)) await this.quiesce(pid);
    // A master first gives up its service IP, so that no new connection reaches it: measured, a cyrmaster whose
    // listen socket kept receiving connections (a client retrying every 5 ms) span during its graceful shutdown
    // until the SIGKILL at the stop timeout. MTAs retry LMTP that got no 250; IMAP sessions end with the stop anyway.
    await this.releaseServiceIp();
    if (pid && pidAlive(pid)) {
      const exited = this.waitExit(pid);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        this.log.warn({ pid, timeoutMs: this.rt.stopTimeoutMs }, 'cyrmaster did not stop in time: SIGKILL to its process group');
        signalGroup(pid, 'SIGKILL');
      }, this.rt.stopTimeoutMs);
      await exited;
      clearTimeout(timer);
      signalGroup(pid, 'SIGKILL'); // children that outlived their master must not hold the slot's ports
    }
    clearInterval(this.pollTimer);
    this.child = undefined;
    this.pid = undefined;
    this.fire('exited');
  }

  /**
   * A master about to stop closes its listeners on the service IP (cyrus.conf without them + SIGHUP: running
   * children go on) and waits, up to LMTP_DRAIN_MS, until the LMTP listener is gone and no delivery is in flight.
   * Releasing the address under a delivery that was already committed would lose its 250, and the MTA's retry would
   * make a duplicate (seen under load: one in ~1,500 messages over 20 switchovers). The drain is logged with its
   * length, and at warning level when it took over a second.
   */
  private async quiesce(pid: number): Promise<void> {
    const ip = this.addresses.heldServiceIp;
    const layout = this.layout;
    if (!ip || !layout) return;
    const started = performance.now();
    try {
      const conf = await readFile(layout.cyrusConf, 'utf8');
      const quiet = conf
        .split('\n')
        .filter((l) => !/^\s+(imapsvc|lmtp)\s/.test(l))
        .join('\n');
      if (quiet !== conf) {
        await writeFileAtomic(layout.cyrusConf, quiet, 0o640);
        const owner = await cyrusOwner();
        if (owner) await chown(layout.cyrusConf, owner.uid, owner.gid);
        process.kill(pid, 'SIGHUP');
      }
      // Counting deliveries right after the SIGHUP is not enough: until cyrmaster has closed the listener (measured
      // ~50 ms), a new connection is still accepted, and releasing the address under it would cut it after its data.
      let sockets = await socketsAt(ip, this.rt.ports.lmtp);
      while ((sockets.listening > 0 || sockets.established > 0) && performance.now() - started < LMTP_DRAIN_MS) {
        await new Promise((r) => setTimeout(r, 20));
        sockets = await socketsAt(ip, this.rt.ports.lmtp);
      }
      const ms = Math.round(performance.now() - started);
      if (sockets.listening > 0 || sockets.established > 0) this.log.warn({ ip, ms, ...sockets }, 'LMTP listener or deliveries still there after the drain time: stopping anyway');
      else if (ms > 1000) this.log.warn({ ip, ms }, 'service listeners closed, no delivery in flight: the drain took over a second (a busy host, or a delivery held up)');
      else this.log.info({ ip, ms }, 'service listeners closed, no delivery in flight');
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not quiesce the service listeners; stopping anyway');
    }
  }

  private waitExit(pid: number): Promise<void> {
    const child = this.child;
    if (child && child.pid === pid) return child.then(() => undefined);
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (!pidAlive(pid)) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
    });
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

  private onExit(child: ResultPromise, code: number | undefined, signal: string | undefined): void {
    if (this.child !== child) return;
    if (!(this.lifecycle === 'starting' || this.lifecycle === 'serving')) return; // stopNow or fence handles it
    this.crashed(`cyrmaster exited with ${signal ? `signal ${signal}` : `code ${code}`}`);
  }

  private crashed(why: string): void {
    const pid = this.pid;
    if (pid) signalGroup(pid, 'SIGKILL');
    this.child = undefined;
    this.pid = undefined;
    if (this.desired?.role === 'MASTER' && !this.rt.mayServeMaster()) {
      // the fence process got there first: not a crash, and no restart without a lease
      clearInterval(this.pollTimer);
      void this.serial(() => this.releaseServiceIp());
      this.fire('fenced', why);
      return;
    }
    this.crashes.push(Date.now());
    this.crashes = recentCrashes(this.crashes, Date.now(), this.rt.crashWindowMs);
    this.lastError = why;
    if (this.crashes.length >= this.rt.crashLimit) {
      this.fire('crash-loop', `${this.crashes.length} crashes in ${this.rt.crashWindowMs / 1000} s; last: ${why}`);
      void this.serial(() => this.releaseServiceIp());
      return;
    }
    const delay = restartDelayMs(this.crashes.length);
    this.fire('crashed', `${why}; restart ${this.crashes.length} in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      void this.serial(async () => {
        if (this.lifecycle !== 'starting' || !this.wantRunning) return;
        await this.startNow();
      });
    }, delay);
  }
}
