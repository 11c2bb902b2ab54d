// The coordinators of a namespace cluster run highly available: c1…cN, each in a namespace of its own, over etcd
// members e1…eM in theirs (test/support/etcd.ts, mutual TLS). Agents and slotctl get every coordinator's address
// and find the leader themselves. Processes are started and signalled by PID only (their PID files under DIR/pids).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, type Daemon, waitFor } from '../../tools/local-cluster.js';
import { HARNESS_COORDINATOR, tlsArgs } from '../../tools/test-pki.js';
import { startEtcd, type EtcdTestCluster } from '../support/etcd.js';
import type { NetnsCluster } from './netns.js';

export interface HaOptions {
  coordinators: number;
  etcd: number;
  /** --leader-lease of every coordinator (default: the coordinator's own, 5 s). */
  leaderLease?: string;
  /** 'sqlite': the cluster starts on c1 alone with its SQLite file (to be moved to etcd by the test). */
  startOn?: 'etcd' | 'sqlite';
}

const PORT = 7400;

export class CoordinatorGroup {
  readonly coordinators: string[];
  readonly members: string[];
  private etcdCluster: EtcdTestCluster | undefined;
  private readonly running = new Map<string, Daemon>();

  constructor(private readonly cluster: NetnsCluster, private readonly options: HaOptions, private readonly o: { dir: string; coordinatorArgs: string[]; log: (line: string) => void }) {
    this.coordinators = Array.from({ length: options.coordinators }, (_, i) => `c${i + 1}`);
    this.members = Array.from({ length: options.etcd }, (_, i) => `e${i + 1}`);
  }

  get hosts(): string[] {
    return [...this.coordinators, ...this.members];
  }

  get etcd(): EtcdTestCluster {
    if (!this.etcdCluster) throw new Error('etcd is not started');
    return this.etcdCluster;
  }

  address(coordinator: string): string {
    return `${this.cluster.address(coordinator)}:${PORT}`;
  }

  /** etcd (once), then the coordinators: every one on etcd, or c1 alone on SQLite (`startOn`). */
  async start(env: Record<string, string> = {}): Promise<void> {
    if (!this.etcdCluster) {
      this.etcdCluster = await startEtcd({
        members: this.members.map((name) => ({ name, host: this.cluster.address(name), netns: this.cluster.ns(name) })),
        pkiDir: this.cluster.pkiDir,
        dir: join(this.o.dir, 'etcd'),
        pidDir: join(this.o.dir, 'pids'),
        log: this.o.log,
      });
    }
    if (this.options.startOn === 'sqlite' && !this.movedToEtcd) {
      this.startOne('c1', env, ['--data-dir', join(this.o.dir, 'coordinator')]);
    } else {
      for (const c of this.coordinators) this.startOne(c, env);
    }
    await this.waitLeader();
  }

  /** Set once the test has moved the cluster to etcd: from then on every coordinator starts on etcd. */
  movedToEtcd = false;

  /** The etcd flags a coordinator (or slot-coordinator import/export) needs. */
  etcdArgs(): string[] {
    const tls = this.etcd.clientTls;
    return ['--store', 'etcd', '--etcd-endpoints', this.etcd.endpoints.join(','), '--etcd-ca', tls.ca, '--etcd-cert', tls.cert, '--etcd-key', tls.key];
  }

  /** Starts one coordinator (on etcd unless `backendArgs` say otherwise); `env` reaches it (the crash hook). */
  startOne(name: string, env: Record<string, string> = {}, backendArgs?: string[]): Daemon {
    if (this.running.get(name) && !this.running.get(name)!.exited) throw new Error(`coordinator ${name} runs already`);
    // each reads its own crash file at every step of an operation (armed by `armCrash`, tests only)
    env = { SLOTCTL_TEST_CRASH_FILE: this.crashFile(name), ...env };
    const daemon = this.cluster.daemon(`coordinator-${name}`, name, [
      BIN.coordinator, '--listen', this.address(name), ...(backendArgs ?? [...this.etcdArgs(), ...(this.options.leaderLease ? ['--leader-lease', this.options.leaderLease] : [])]),
      ...tlsArgs(this.cluster.pkiDir, HARNESS_COORDINATOR), ...this.o.coordinatorArgs,
    ], env);
    this.running.set(name, daemon);
    this.o.log(`coordinator ${name} started`);
    return daemon;
  }

  crashFile(name: string): string {
    return join(this.o.dir, `crash-at-${name}`);
  }

  /** The running coordinator `name` kills itself at `point` (STEP:before|after) of an operation; '' disarms it. */
  armCrash(name: string, point: string): void {
    writeFileSync(this.crashFile(name), point);
  }

  process(name: string): Daemon | undefined {
    return this.running.get(name);
  }

  /** kill -9 of one coordinator. */
  async kill(name: string): Promise<void> {
    await this.running.get(name)?.crash();
    this.o.log(`coordinator ${name} killed`);
  }

  /** A graceful stop (a leader hands over at once). */
  async stop(name: string): Promise<void> {
    await this.running.get(name)?.stop();
    this.o.log(`coordinator ${name} stopped`);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((c) => this.stop(c)));
  }

  /** The coordinator that answers as leader now (each asked alone: a follower does not answer), or undefined. */
  async leader(): Promise<string | undefined> {
    const answers = await Promise.all(this.coordinators.map(async (c) => {
      const d = this.running.get(c);
      if (!d || d.exited) return undefined;
      const r = await this.cluster.exec('co', ['node', BIN.slotctl, '--coordinator', this.address(c), ...tlsArgs(this.cluster.pkiDir, { role: 'admin', name: 'harness' }), 'status', '--json']);
      return r.exitCode === 0 || r.exitCode === 3 ? c : undefined;
    }));
    return answers.find((a) => a !== undefined);
  }

  async waitLeader(timeoutMs = 30_000, not?: string): Promise<string> {
    return waitFor(`a leader coordinator${not ? ` other than ${not}` : ''}`, async () => {
      const l = await this.leader();
      return l && l !== not ? l : undefined;
    }, timeoutMs, 200);
  }

  /** The wall-clock times (ms) at which a coordinator's log says `message` (e.g. 'elected leader coordinator'). */
  logTimes(name: string, message: string): number[] {
    const file = join(this.o.dir, 'logs', `coordinator-${name}.log`);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return [];
    }
    const out: number[] = [];
    for (const line of text.split('\n')) {
      if (!line.includes(`"msg":"${message}"`)) continue;
      const time = /"time":"([^"]+)"/.exec(line)?.[1];
      if (time) out.push(Date.parse(time));
    }
    return out;
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.running.values()].map((d) => d.stop(5000)));
    await this.etcdCluster?.stop();
  }
}
