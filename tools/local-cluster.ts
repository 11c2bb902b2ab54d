// A cluster on this one host: a coordinator and agents as real processes on loopback addresses. Used by the demo,
// the integration tests and the benchmarks. Processes are started without a shell and stopped only by their PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { Admin } from '@slotctl/cli';
import { HARNESS_COORDINATOR, HARNESS_OPERATOR, ensureCertificates, harnessCertificates, tlsArgs } from './test-pki.js';
import { freePorts } from './ports.js';

export { freePort } from './ports.js';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const BIN = {
  coordinator: join(ROOT, 'packages/coordinator/bin/slot-coordinator.js'),
  slotctl: join(ROOT, 'packages/cli/bin/slotctl.js'),
  agent: join(ROOT, 'packages/agent/bin/slot-agent.js'),
};

export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const live = new Set<ChildProcess>();
// Like execa's cleanup: daemons do not outlive the harness that started them.
process.once('exit', () => {
  for (const child of live) child.kill('SIGTERM');
});

/**
 * A daemon whose stdout and stderr are its log file itself, not pipes: it can never block on logging when the
 * harness stops reading (an agent once hung for ever in its logger after its test process went away). That needs
 * real file descriptors, which execa's types do not accept, hence node's spawn, with an argument array and no
 * shell. Stopped by PID.
 */
export class Daemon {
  readonly process: ChildProcess;
  private readonly done: Promise<void>;
  exited = false;
  exitCode: number | undefined;

  /**
   * `ownSession`: the daemon leads a session of its own, as systemd gives each service, and so has its own scheduling
   * group (autogroup), whose priority it sets ahead of the Cyrus slots' groups. Then a Ctrl-C to the harness does not
   * reach it: only for harnesses that record its PID for their cleanup (test/cluster/netns.ts).
   */
  constructor(readonly name: string, args: string[], readonly logFile: string, env: Record<string, string> = {}, options: { ownSession?: boolean } = {}) {
    const fd = openSync(logFile, 'a');
    // The first argument is an executable bin file: its shebang carries the daemon's own node flags.
    const [file, ...rest] = args;
    try {
      this.process = spawn(file!, rest, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: options.ownSession ?? false });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    live.add(this.process);
    this.done = new Promise((resolve) => {
      this.process.once('exit', (code) => {
        this.exited = true;
        this.exitCode = code ?? undefined;
        live.delete(this.process);
        resolve();
      });
      this.process.once('error', () => resolve());
    });
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code (undefined if killed by a signal). */
  async stop(graceMs = 5000): Promise<number | undefined> {
    if (!this.exited) {
      this.process.kill('SIGTERM');
      const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
      await this.done;
      clearTimeout(timer);
    }
    return this.exitCode;
  }

  /** The last lines of its log: for an error that reaches a CI log whose machine's files are gone. */
  logEnd(lines = 8): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => `  ${l}`).join('\n');
    } catch (err) {
      return `  (cannot read it: ${(err as Error).message})`;
    }
  }

  /** kill -9: a crash, as far as anyone else can tell. */
  async crash(): Promise<void> {
    this.process.kill('SIGKILL');
    await this.done;
  }
}

export interface LocalClusterOptions {
  dir: string;
  heartbeatInterval?: string;
  lease?: string;
  logLevel?: string;
  /** Deadline of the Admin calls this harness makes (default 5 s). */
  callTimeoutMs?: number;
  /** Node flags for the coordinator process (e.g. --cpu-prof for a benchmark's profile; not allowed in NODE_OPTIONS). */
  coordinatorNodeArgs?: string[];
  /** Run every process without TLS (--insecure): only tests of that mode. */
  insecure?: boolean;
  /** A PKI of this cluster's own (under `dir`), not the test run's: for a test that re-issues certificates. */
  ownPki?: boolean;
  /**
   * The coordinators keep the cluster in etcd (--store etcd) instead of SQLite under `dir`: these members, dialled with
   * these client files (test/support/etcd.ts gives both: `endpoints`, `clientTls`). Read when a coordinator starts:
   * a harness may set it after the constructor, once etcd runs with the certificates of `pkiDir`.
   */
  etcd?: { endpoints: readonly string[]; ca: string; cert: string; key: string; prefix?: string; leaderLease?: string };
  /**
   * How many coordinators (default 1; several only with `etcd`): each on a port of its own with --advertise, one of
   * them elected leader. `target` is then every address, comma-separated, and the Admin client follows the leader.
   */
  coordinators?: number;
}

export class LocalCluster {
  /** The (first) coordinator's port. */
  port = 0;
  /** Each coordinator's port, in order (the first is `port`). */
  readonly ports: number[] = [];
  /** Each coordinator's HTTP port (metrics, health, status page), in order. */
  readonly httpPorts: number[] = [];
  /** The coordinator started last (with one coordinator: the coordinator). */
  coordinator: Daemon | undefined;
  /** Each coordinator's process of its last start, by index. */
  readonly coordinators: (Daemon | undefined)[] = [];
  readonly agents = new Map<string, Daemon>();
  /** Each agent's HTTP port (metrics, health), by machine, once agentHttpUrl has read it. */
  readonly agentHttpPorts = new Map<string, number>();
  /** Where each agent's log ended when it was last started: its HTTP port is read from what follows. */
  private readonly agentLogStart = new Map<string, number>();
  private admin: Admin | undefined;

  /** Where the cluster's certificates are: the test run's (SLOTCTL_TEST_PKI_DIR) or the cluster's own. */
  readonly pkiDir: string;

  constructor(readonly options: LocalClusterOptions) {
    mkdirSync(join(options.dir, 'logs'), { recursive: true });
    this.pkiDir = (options.ownPki ? undefined : process.env.SLOTCTL_TEST_PKI_DIR) ?? join(options.dir, 'pki');
    if (!options.insecure) ensureCertificates(this.pkiDir, [HARNESS_COORDINATOR, HARNESS_OPERATOR]);
  }

  /** How many coordinators this cluster runs. */
  get coordinatorCount(): number {
    return this.options.coordinators ?? 1;
  }

  /** Coordinator `index`'s address (its --listen and --advertise). */
  address(index = 0): string {
    return `127.0.0.1:${index === 0 ? this.port : (this.ports[index] ?? 0)}`;
  }

  /** Coordinator `index`'s HTTP endpoints (its --http-listen), as a base URL. */
  httpUrl(index = 0): string {
    return `${this.options.insecure ? 'http' : 'https'}://127.0.0.1:${this.httpPorts[index] ?? 0}`;
  }

  /**
   * Agent `machine`'s HTTP endpoints (its --http-listen), as a base URL. Each agent listens on a port the kernel picks
   * (their default, 7481, is one per host), read from the line its server logs once it listens (log level info).
   */
  async agentHttpUrl(machine: string, timeoutMs = 15_000): Promise<string> {
    const log = join(this.options.dir, 'logs', `agent-${machine}.log`);
    const port = this.agentHttpPorts.get(machine) ?? (await waitFor(`agent ${machine} to serve HTTP (its log: ${log})`, () => {
      if (this.agents.get(machine)?.exited) throw new Error(`agent ${machine} exited; see ${log}`);
      const since = readFileSync(log).subarray(this.agentLogStart.get(machine) ?? 0).toString('utf8');
      for (const line of since.split('\n')) {
        if (!line.includes('HTTP endpoints on')) continue;
        let port: unknown;
        try {
          port = (JSON.parse(line) as { port?: unknown }).port;
        } catch {
          continue; // the line is still being written
        }
        if (typeof port === 'number' && port > 0) return port;
      }
      return undefined;
    }, timeoutMs, 100));
    this.agentHttpPorts.set(machine, port);
    return `${this.options.insecure ? 'http' : 'https'}://127.0.0.1:${port}`;
  }

  /** The flags that give a process `id`'s certificate (or --insecure). */
  tlsArgs(id: { role: string; name: string }): string[] {
    if (this.options.insecure) return ['--insecure'];
    ensureCertificates(this.pkiDir, [id]);
    return tlsArgs(this.pkiDir, id);
  }

  /** Where agents and slotctl reach the coordinator: with several, every address, comma-separated (they find the leader). */
  get target(): string {
    if (this.coordinatorCount === 1) return `127.0.0.1:${this.port}`;
    return Array.from({ length: this.coordinatorCount }, (_, i) => this.address(i)).join(',');
  }

  get databasePath(): string {
    return join(this.options.dir, 'coordinator', 'coordinator.db');
  }

  client(): Admin {
    this.admin ??= new Admin(this.target, this.options.callTimeoutMs ?? 5000, this.options.insecure ? undefined : harnessCertificates(this.pkiDir));
    return this.admin;
  }

  /**
   * Starts the coordinator (`index`: which one, with several) and waits until the leader answers Status, unless
   * `ready: false` (a benchmark restarting it under a thousand agents: a Status of that cluster is work the restart
   * should not be measured with).
   */
  async startCoordinator(options: { ready?: boolean; index?: number } = {}): Promise<Daemon> {
    const index = options.index ?? 0;
    if (index < 0 || index >= this.coordinatorCount) throw new Error(`no coordinator ${index}: this cluster has ${this.coordinatorCount}`);
    if (this.coordinatorCount > 1 && !this.options.etcd) throw new Error('several coordinators need the etcd backend (options.etcd)');
    await this.assignPorts();
    const node = this.options.coordinatorNodeArgs?.length ? [process.execPath, ...shebangFlags(BIN.coordinator), ...this.options.coordinatorNodeArgs] : [];
    const etcd = this.options.etcd;
    const store = etcd
      ? [
          '--store', 'etcd',
          '--etcd-endpoints', etcd.endpoints.join(','),
          '--etcd-ca', etcd.ca, '--etcd-cert', etcd.cert, '--etcd-key', etcd.key,
          ...(etcd.prefix ? ['--etcd-prefix', etcd.prefix] : []),
          '--leader-lease', etcd.leaderLease ?? '2s',
          '--advertise', this.address(index),
        ]
      : ['--data-dir', join(this.options.dir, 'coordinator')];
    const args = [
      ...node,
      BIN.coordinator,
      '--listen', this.address(index),
      '--http-listen', `127.0.0.1:${this.httpPorts[index]}`,
      ...store,
      '--heartbeat-interval', this.options.heartbeatInterval ?? '1s',
      '--lease', this.options.lease ?? '5s',
      '--log-level', this.options.logLevel ?? 'info',
      ...this.tlsArgs(HARNESS_COORDINATOR),
    ];
    const name = this.coordinatorCount === 1 ? 'coordinator' : `coordinator-c${index + 1}`;
    const daemon = new Daemon(name, args, this.coordinatorLog(index));
    this.coordinator = daemon;
    this.coordinators[index] = daemon;
    if (options.ready === false) return daemon;
    await waitFor('the coordinator to answer', async () => {
      if (daemon.exited) throw new Error(`coordinator exited with code ${daemon.exitCode}; see ${daemon.logFile}, which ends:\n${daemon.logEnd()}`);
      return (await this.client().status()) ? true : undefined;
    });
    return daemon;
  }

  /** Starts every coordinator, then waits until one leads and answers Status (unless `ready: false`). */
  async startCoordinators(options: { ready?: boolean } = {}): Promise<Daemon[]> {
    const started: Daemon[] = [];
    for (let i = 0; i < this.coordinatorCount; i++) started.push(await this.startCoordinator({ index: i, ready: false }));
    if (options.ready === false) return started;
    await waitFor('a coordinator to lead and answer', async () => {
      const gone = started.find((d) => d.exited);
      if (gone) throw new Error(`${gone.name} exited with code ${gone.exitCode}; see ${gone.logFile}, which ends:\n${gone.logEnd()}`);
      return (await this.client().status()) ? true : undefined;
    }, 30_000);
    return started;
  }

  /** Coordinator `index`'s log file. */
  coordinatorLog(index = 0): string {
    return join(this.options.dir, 'logs', this.coordinatorCount === 1 ? 'coordinator.log' : `coordinator-c${index + 1}.log`);
  }

  /**
   * Which running coordinator leads: each asked alone (a call a follower refuses at once), or undefined while none
   * does. A cheap call (the last event), not Status: under a thousand agents a Status is work.
   */
  async leaderIndex(timeoutMs = 5000): Promise<number | undefined> {
    const answers = await Promise.all(this.coordinators.map(async (d, i) => {
      if (!d || d.exited) return false;
      const one = new Admin(this.address(i), timeoutMs, this.options.insecure ? undefined : harnessCertificates(this.pkiDir));
      try {
        await one.listEvents({ limit: 1 });
        return true;
      } catch {
        return false;
      } finally {
        one.close();
      }
    }));
    const i = answers.indexOf(true);
    return i < 0 ? undefined : i;
  }

  /** A port for each coordinator and its HTTP endpoint, once, all distinct (tools/ports.ts says where from). */
  private async assignPorts(): Promise<void> {
    if (this.port) this.ports[0] = this.port;
    for (let i = 0; i < this.coordinatorCount; i++) {
      if (this.ports[i] && this.httpPorts[i]) continue;
      const taken = [...this.ports, ...this.httpPorts];
      const [grpcPort, httpPort] = (await freePorts(2 + taken.length)).filter((p) => !taken.includes(p));
      this.ports[i] ??= grpcPort!;
      this.httpPorts[i] ??= httpPort!;
    }
    this.port = this.ports[0]!;
  }

  /**
   * Starts an agent, in test mode (any password) unless a replication password file is given (production auth).
   * By default it stops its slots when it stops.
   */
  startAgent(machine: string, options: { keepSlotsOnExit?: boolean; syncPasswordFile?: string; stallAfter?: string; readyTimeout?: string; diskReportInterval?: string; env?: Record<string, string> } = {}): Daemon {
    const args = [
      BIN.agent,
      '--machine', machine,
      '--coordinator', this.target,
      '--state-dir', join(this.options.dir, 'agents', machine),
      ...this.tlsArgs({ role: 'agent', name: machine }),
      ...(options.syncPasswordFile ? ['--auth', 'sasldb', '--sync-password-file', options.syncPasswordFile] : ['--auth', 'test']),
      '--log-level', this.options.logLevel ?? 'info',
      ...(options.keepSlotsOnExit ? [] : ['--stop-slots-on-exit']),
      ...(options.stallAfter ? ['--stall-after', options.stallAfter] : []),
      ...(options.readyTimeout ? ['--ready-timeout', options.readyTimeout] : []),
      ...(options.diskReportInterval ? ['--disk-report-interval', options.diskReportInterval] : []),
      // a port of its own: several agents share this host (agentHttpUrl finds which)
      '--http-listen', '127.0.0.1:0',
    ];
    const log = join(this.options.dir, 'logs', `agent-${machine}.log`);
    this.agentLogStart.set(machine, existsSync(log) ? statSync(log).size : 0);
    this.agentHttpPorts.delete(machine);
    const daemon = new Daemon(`agent-${machine}`, args, log, options.env);
    this.agents.set(machine, daemon);
    return daemon;
  }

  /** Runs slotctl against this cluster's coordinator, as an operator would. */
  async slotctl(args: string[], input?: string, as: { role: string; name: string } = HARNESS_OPERATOR) {
    return execa('node', [BIN.slotctl, '--coordinator', this.target, ...this.tlsArgs(as), ...args], { reject: false, ...(input === undefined ? {} : { input }) });
  }

  /** One slot as the coordinator sees it. */
  async slot(name: string) {
    const found = (await this.client().listSlots({ machine: '' })).slots.find((s) => s.name === name);
    if (!found) throw new Error(`no slot ${name}`);
    return found;
  }

  async waitSlotState(name: string, state: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(`${name} to be ${state}`, async () => ((await this.slot(name)).state === state ? true : undefined), timeoutMs, 50);
  }

  /** Applies a cluster file, starts an agent per machine and waits until the given slots serve. */
  async bringUp(clusterText: string, machines: string[], serving: string[], agentOptions: Parameters<LocalCluster['startAgent']>[1] = {}): Promise<void> {
    await this.startCoordinator();
    const applied = await this.slotctl(['cluster', 'apply', '-'], clusterText);
    if (applied.exitCode !== 0) throw new Error(`cluster apply failed: ${applied.stdout}${applied.stderr}`);
    for (const m of machines) this.startAgent(m, agentOptions);
    for (const s of serving) await this.waitSlotState(s, 'SERVING');
  }

  async machineStates(): Promise<Record<string, string>> {
    const reply = await this.client().listMachines();
    return Object.fromEntries(reply.machines.map((m) => [m.name, m.state]));
  }

  async waitForMachines(state: string, machines: string[], timeoutMs = 15_000): Promise<void> {
    await waitFor(`machines ${machines.join(', ')} to be ${state}`, async () => {
      const states = await this.machineStates();
      return machines.every((m) => states[m] === state) ? true : undefined;
    }, timeoutMs);
  }

  /** Stops every agent, then the coordinator; gracefully first. Then kills, by PID, any cyrmaster left under dir. */
  async stopAll(): Promise<void> {
    this.admin?.close();
    this.admin = undefined;
    await Promise.all([...this.agents.values()].map((a) => a.stop(20_000)));
    this.agents.clear();
    await Promise.all([...new Set([this.coordinator, ...this.coordinators])].map((c) => c?.stop()));
    killSlotsUnder(this.options.dir);
  }
}

/** The node flags on a bin file's `#!/usr/bin/env -S node …` line: kept when the file is run as `node FLAGS file`. */
function shebangFlags(bin: string): string[] {
  const first = readFileSync(bin, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node (.+)$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/**
 * Kills the process group of every cyrmaster whose PID file lies under `dir` (slots of a crashed agent, and the
 * temporary IMAP instance of a recovery), and every slot-fence guarding a state directory under it (fences outlive
 * their agents on purpose).
 */
export function killSlotsUnder(dir: string): number[] {
  const killed: number[] = [];
  const visit = (d: string, depth: number) => {
    if (depth > 8) return;
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(d, e.name);
      if (e.isDirectory()) visit(path, depth + 1);
      else if (e.name === 'master.pid' || e.name === 'recover.pid' || e.name === 'slot-fence.pid') {
        const pid = Number(readFileSync(path, 'utf8').trim());
        if (!Number.isInteger(pid) || pid <= 1) continue;
        try {
          const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          if (!cmd.includes(dir)) continue; // a reused PID: not ours
          process.kill(e.name === 'slot-fence.pid' ? pid : -pid, 'SIGKILL');
          killed.push(pid);
        } catch {
          // not running
        }
      }
    }
  };
  visit(dir, 0);
  return killed;
}

/** A cluster file for `machines` × `storesPerPair`: each store's slots on two machines, masters spread evenly. */
export function demoClusterYaml(dataRoot: string, machineCount: number, storeCount: number): string {
  const machines = Array.from({ length: machineCount }, (_, i) => `m${i + 1}`);
  const lines = ['machines:'];
  machines.forEach((m, i) => {
    lines.push(`  - name: ${m}`, `    address: 127.0.10.${i + 1}`, '    disks:', `      - { name: disk0, path: ${dataRoot}/${m}, class: ssd }`);
  });
  lines.push('stores:');
  for (let s = 0; s < storeCount; s++) {
    const name = `s${String(s + 1).padStart(2, '0')}`;
    const masterIndex = s % machineCount;
    const replicaIndex = (masterIndex + 1 + Math.floor(s / machineCount)) % machineCount;
    const pair = [masterIndex, replicaIndex === masterIndex ? (masterIndex + 1) % machineCount : replicaIndex];
    lines.push(`  - name: ${name}`, `    service_ip: 127.0.20.${s + 1}`, `    master: ${machines[pair[0]!]}`, '    slots:');
    for (const index of pair) {
      const m = machines[index]!;
      const dir = `${dataRoot}/${m}/${name}`;
      lines.push(`      - { machine: ${m}, ip: 127.0.${21 + index}.${s + 1}, data_path: ${dir}/data, meta_path: ${dir}/meta }`);
    }
  }
  return `${lines.join('\n')}\n`;
}
