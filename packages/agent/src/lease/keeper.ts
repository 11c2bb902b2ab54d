// The main thread's side of the lease keeper (worker.ts runs the lease on a thread of its own). The session tells it
// what it sent and what was acknowledged, the peer link tells it the failsafe deadline, the slots tell it which
// masters the fence must guard; it answers `holds()` from shared memory, so that a main thread held up by slot work
// still reads exactly the deadline the fence enforces, and hears of the lease's end and return as messages.
import { Worker } from 'node:worker_threads';
import type { Logger, TlsPaths } from '@slotctl/shared';
import type { FenceFile, FencedMaster } from '../fence/fence-file.js';
import { monotonicMs } from './lease.js';
import type { RelayCandidate } from './relay.js';

export interface KeeperData {
  /** The certificate files (the thread reads them itself); undefined: --insecure. */
  tls?: TlsPaths;
  machine: string;
  logLevel: string;
  /** fence.json */
  path: string;
  /** What fence.json starts with (an earlier agent's deadline and masters, same boot). */
  file: FenceFile;
  /**
   * Float64 [0]: the deadline the masters may serve to (NaN: none); [1]: 1 while held; [2]: the coordinator's lease
   * alone (NaN: none). Int32 at byte 24: how many times the lease has run out (LAPSES_OFFSET).
   */
  shared: SharedArrayBuffer;
}

/** Where the lapse counter lives in the shared buffer (an Int32 after the three Float64s). */
export const LAPSES_OFFSET = 24;

export type ToKeeper =
  /** welcomedAt: when the main thread read the welcome (monotonic ms): relayed renewals say how long after it they left. */
  | { t: 'session'; coordinator: string; instanceId: string; intervalMs: number; leaseMs: number; term: number; relayKey: string; welcomedAt: number }
  | { t: 'session-end' }
  /** A newer leadership term seen by the link: renewals acknowledged under an older one do not count. */
  | { t: 'term'; term: number }
  /** fenced: what the heartbeat said (the masters wait for the coordinator's confirmation): no relay meanwhile. */
  | { t: 'sent'; seq: number; at: number; fenced: boolean; handled: number; starting: boolean }
  | { t: 'acked'; seq: number; leaseMs: number }
  | { t: 'failsafe'; until: number | undefined }
  | { t: 'masters'; id: number; masters: FencedMaster[] }
  /** The digest of the roles this agent has applied (relayed renewals carry it). */
  | { t: 'roles'; digest: string }
  /** The partners a renewal may be relayed through, those that reach the coordinator first. */
  | { t: 'relayers'; candidates: RelayCandidate[] }
  /** Answered ('written') once every message before it has been handled: fence.json holds what they changed. */
  | { t: 'flush'; id: number }
  | { t: 'stop' };

export type FromKeeper =
  | { t: 'ready'; ok: boolean }
  | { t: 'written'; id: number; ok: boolean }
  | { t: 'held'; holder: string }
  /** Renewals go through partner `via` (undefined: directly again). */
  | { t: 'relayed'; via: string | undefined }
  | { t: 'lost'; why: string }
  | { t: 'fence-write-failed'; why: string };

export interface KeeperOptions {
  tls?: TlsPaths;
  machine: string;
  logLevel: string;
  path: string;
  file: FenceFile;
  log: Logger;
  /** The lease ran out: masters stop serving (the fence kills them; the agent backs it up). */
  lost: (why: string) => void;
  /** Held again (or for the first time): masters may start. */
  regained: () => void;
  /** How many lapses the agent has handled (its `lost`): see sent(). */
  handledLapses?: () => number;
  /** fence.json could not be written (at most once a minute while it fails): worth a critical event. */
  fenceWriteFailed?: (why: string) => void;
}

export class LeaseKeeper {
  private readonly buffer = new SharedArrayBuffer(32);
  private readonly shared = new Float64Array(this.buffer, 0, 3);
  private readonly lapseCount = new Int32Array(this.buffer, LAPSES_OFFSET, 1);
  private readonly worker: Worker;
  private readonly waiting = new Map<number, (ok: boolean) => void>();
  private nextId = 1;
  private ready: Promise<boolean>;
  holder = 'coordinator lease';
  /** The partner the lease is renewed through now, if it is relayed. */
  relayedVia: string | undefined;
  /** The lease length the coordinator last granted (welcome or acknowledgement), ms; undefined before the first. */
  grantedLeaseMs: number | undefined;
  /** The grant last said in the log (see acked). */
  private saidLeaseMs: number | undefined;

  constructor(private readonly options: KeeperOptions) {
    this.shared[0] = Number.NaN;
    this.shared[2] = Number.NaN;
    const data: KeeperData = { tls: options.tls, machine: options.machine, logLevel: options.logLevel, path: options.path, file: options.file, shared: this.buffer };
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: data });
    this.ready = new Promise((resolve) => {
      this.worker.on('message', (m: FromKeeper) => {
        if (m.t === 'ready') resolve(m.ok);
        else if (m.t === 'written') {
          this.waiting.get(m.id)?.(m.ok);
          this.waiting.delete(m.id);
        } else if (m.t === 'held') {
          this.holder = m.holder;
          options.regained();
        } else if (m.t === 'lost') options.lost(m.why);
        else if (m.t === 'relayed') this.relayedVia = m.via;
        else if (m.t === 'fence-write-failed') options.fenceWriteFailed?.(m.why);
      });
    });
    // the lease is the machine's right to serve: a keeper that dies must not leave it believed held
    this.worker.on('error', (err) => {
      this.shared[0] = Number.NaN;
      options.log.fatal({ err: err.stack }, 'the lease keeper thread failed (a bug): masters stop serving; the agent exits so that it is restarted');
      options.lost('lease keeper failed');
      setTimeout(() => process.exit(1), 500).unref();
    });
    // not unref'd: while the agent waits for it (start-up), it is what keeps the process alive
  }

  /** Resolves once fence.json holds what the keeper starts with (before the fence process is started). */
  async start(): Promise<void> {
    if (!(await this.ready)) throw new Error(`cannot write ${this.options.path}: the fence could not guard this machine's masters`);
  }

  /** The deadline the masters may serve to (CLOCK_MONOTONIC ms), as the fence knows it; undefined: none. */
  get deadline(): number | undefined {
    const d = this.shared[0]!;
    return Number.isNaN(d) ? undefined : d;
  }

  holds(now = monotonicMs()): boolean {
    const d = this.deadline;
    return d !== undefined && now < d;
  }

  /**
   * How many times the lease has run out, counted by the lease thread at the moment it does — before it posts `lost`
   * and before any renewal can move the deadline again. The shared deadline can say "held" again (a renewal) before
   * the main thread has handled the `lost` that came first: a reader compares this count with the one it last
   * handled, and a difference means a lapse it has not dealt with yet.
   */
  lapses(): number {
    return Atomics.load(this.lapseCount, 0);
  }

  /** Whether acknowledgements from a coordinator hold the lease now (a failsafe promise aside). */
  coordinatorLeaseHeld(now = monotonicMs()): boolean {
    const d = this.shared[2]!;
    return !Number.isNaN(d) && now < d;
  }

  /** Ms left, negative when expired; undefined when never held. */
  remaining(now = monotonicMs()): number | undefined {
    const d = this.deadline;
    return d === undefined ? undefined : d - now;
  }

  private send(m: ToKeeper): void {
    this.worker.postMessage(m);
  }

  /** A session was welcomed: renewals go to its coordinator, whose term is `term`. */
  session(coordinator: string, instanceId: string, intervalMs: number, leaseMs: number, term: number, relayKey: string, welcomedAt = monotonicMs()): void {
    this.grantedLeaseMs = leaseMs;
    this.saidLeaseMs = leaseMs;
    this.send({ t: 'session', coordinator, instanceId, intervalMs, leaseMs, term, relayKey, welcomedAt });
  }

  /** The roles this agent has applied changed: relayed renewals say so (see Agent.Relay). */
  roles(digest: string): void {
    this.send({ t: 'roles', digest });
  }

  relayers(candidates: RelayCandidate[]): void {
    this.send({ t: 'relayers', candidates });
  }

  term(term: number): void {
    this.send({ t: 'term', term });
  }

  sessionEnded(): void {
    this.send({ t: 'session-end' });
  }

  /**
   * `fenced`, `starting`: what the heartbeat says (the thread's renewals say the same); sent with the lapses the agent
   * had handled then (one not handled yet counts as fenced).
   */
  sent(seq: number, at: number, fenced = false, starting = false): void {
    this.send({ t: 'sent', seq, at, fenced, handled: this.options.handledLapses?.() ?? 0, starting });
  }

  acked(seq: number, leaseMs: number): void {
    // a hold begins or ends (the coordinator's restart or start hold): said once, not at every acknowledgement, nor
    // for the few ms a grant bounded by an etcd leadership differs by from the last
    const said = this.saidLeaseMs ?? this.grantedLeaseMs;
    if (said !== undefined && Math.abs(leaseMs - said) >= 500) {
      this.options.log.info({ leaseMs, wasMs: said }, `the coordinator now grants a lease of ${leaseMs} ms (was ${said} ms)`);
      this.saidLeaseMs = leaseMs;
    }
    this.grantedLeaseMs = leaseMs;
    this.send({ t: 'acked', seq, leaseMs });
  }

  setFailsafe(until: number | undefined): void {
    this.send({ t: 'failsafe', until });
  }

  /** The masters the fence guards; resolves true once fence.json names them (before any of them starts). */
  publishMasters(masters: FencedMaster[]): Promise<boolean> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ t: 'masters', id, masters });
    });
  }

  /** Resolves once the thread has handled every message sent before (an acknowledgement's deadline is in fence.json). */
  flush(): Promise<boolean> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.send({ t: 'flush', id });
    });
  }

  stop(): void {
    this.send({ t: 'stop' });
  }
}
