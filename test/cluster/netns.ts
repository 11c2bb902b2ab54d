// A multi-machine cluster on one host: every machine is a Linux network namespace joined to a bridge in a
// "switch" namespace; the coordinator and the mail clients have namespaces of their own. Addresses come from
// 10.231.0.0/16, which exists only inside these namespaces. Agents run inside their machine's namespace with the
// real `ip` + `arping` service-IP driver; their Cyrus slots inherit it.
//
// Everything this harness creates carries its prefix (namespaces `PREFIX-…`) and every process it starts has a PID
// file under DIR/pids, so `destroy()` (and `pnpm test:cleanup` after a killed run) remove exactly what it made.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { BIN, Daemon, ROOT, killSlotsUnder, waitFor } from '../../tools/local-cluster.js';
import { HARNESS_COORDINATOR, HARNESS_OPERATOR, ensureCertificates, tlsArgs, tlsEnv, tlsSettings } from '../../tools/test-pki.js';
import { logTail } from '../support/fixtures.js';
import { CLUSTER_LOCK, NETNS_PREFIX, cleanupNetns, removeStaleLock, unmountUnder } from './netns-cleanup.js';
import { CoordinatorGroup, type HaOptions } from './netns-ha.js';

const SUBNET = '10.231';
const COORDINATOR_PORT = 7400;

export interface NetnsClusterOptions {
  dir: string;
  /** Distinguishes clusters of parallel test files: namespaces are `sltt<id>-…`. */
  id: string;
  machines?: number;
  slotsPerMachine?: number;
  /** Store names are PREFIX01, PREFIX02…: clusters running side by side share /dev/log, whose files go by slot name. */
  storePrefix?: string;
  /** Extra slot-agent arguments (e.g. a short --stall-after). */
  agentArgs?: string[];
  /** Extra slot-coordinator arguments (e.g. a shorter --lease). */
  coordinatorArgs?: string[];
  /** Explicit stores instead of the round-robin layout (benchmarks: many masters on one machine). */
  stores?: { name: string; master: string; replica: string }[];
  /**
   * Coordinators c1…cN and etcd members e1…eM in namespaces of their own (netns-ha.ts); agents and slotctl are given
   * every coordinator's address. The cluster starts on etcd unless `startOn: 'sqlite'` (c1 alone, its SQLite file).
   */
  ha?: HaOptions;
  /**
   * The executables run for the coordinator, the agents and slotctl: the source tree's by default; the installed
   * package's (/usr/bin/…) in the install test. Read at each start, so a package upgrade in between takes effect.
   */
  bin?: { coordinator: string; agent: string; slotctl: string };
  /** The coordinator's and agents' settings in a --config file each instead of flags (extra args stay flags). */
  configFiles?: boolean;
  /** Agents leave their slots serving when they stop (as in production): for tests of agent restarts and upgrades. */
  agentsKeepSlots?: boolean;
  /** Extra environment of each machine's agent (and so of its Cyrus slots): the soak's libfaketime clock. */
  agentEnv?: (machine: string) => Record<string, string>;
  /** Each slot's data and meta partition on a tmpfs of its own, this size: a partition that can be filled up. */
  partitionFsMb?: number;
  /** Each machine mN declares addresses for new slots (replica moves): slot_ips 10.231.6.(20N)–(20N+19). */
  slotPools?: boolean;
  log?: (line: string) => void;
}

async function sh(args: string[]): Promise<string> {
  const result = await execa(args[0]!, args.slice(1), { reject: false });
  if (result.exitCode !== 0) throw new Error(`${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

export interface LoadSummary {
  sent: number;
  acked: number;
  retries: number;
  rejected: number;
  longestMs: number;
  inFlight: number;
  /** Messages still queued or being delivered when the load stopped, per store (a stuck store shows here). */
  inFlightByStore: Record<string, number>;
}

export interface OperationDriver {
  run<T>(cmd: object): Promise<T>;
  close(): void;
}

export class NetnsCluster {
  readonly machines: string[];
  readonly slotsPerMachine: number;
  private readonly prefix: string;
  private coordinator: Daemon | undefined;
  private readonly agents = new Map<string, Daemon>();
  private readonly log: (line: string) => void;
  private cuts = 0;
  private busy: Daemon[] = [];
  private locked = false;
  /** With `ha`: the coordinators and etcd members. */
  readonly ha: CoordinatorGroup | undefined;

  constructor(private readonly options: NetnsClusterOptions) {
    this.machines = Array.from({ length: options.machines ?? 5 }, (_, i) => `m${i + 1}`);
    this.slotsPerMachine = options.slotsPerMachine ?? 4;
    this.prefix = `${NETNS_PREFIX}${options.id}`;
    this.log = options.log ?? (() => undefined);
    mkdirSync(join(options.dir, 'pids'), { recursive: true });
    mkdirSync(join(options.dir, 'logs'), { recursive: true });
    this.pkiDir = process.env.SLOTCTL_TEST_PKI_DIR ?? join(options.dir, 'pki');
    ensureCertificates(this.pkiDir, [HARNESS_COORDINATOR, HARNESS_OPERATOR, ...this.machines.map((name) => ({ role: 'agent', name }))]);
    this.ha = options.ha ? new CoordinatorGroup(this, options.ha, { dir: options.dir, coordinatorArgs: options.coordinatorArgs ?? [], log: this.log }) : undefined;
  }

  /** The cluster's certificates (every link is mutual TLS): the test run's, or the cluster's own. */
  readonly pkiDir: string;

  /** The environment that gives a tool (operation driver, admin-move) the harness operator's certificate. */
  get operatorEnv(): Record<string, string> {
    return tlsEnv(this.pkiDir);
  }

  /**
   * A daemon's settings as flags, or (configFiles) as the YAML file an operator writes (/etc/slotctl/agent.yaml):
   * each flag's name in snake_case, the coordinators a list. Written 0644 by root in a directory only root writes.
   */
  private settingsArgs(name: string, settings: Record<string, string | boolean | string[]>): string[] {
    if (!this.options.configFiles) {
      return Object.entries(settings).flatMap(([flag, value]) => (value === true ? [`--${flag}`] : [`--${flag}`, String(value)]));
    }
    const lines = Object.entries(settings).map(([flag, value]) => {
      const key = flag === 'coordinator' ? 'coordinators' : flag.replaceAll('-', '_');
      return key === 'coordinators' ? `${key}: [${String(value).split(',').join(', ')}]` : `${key}: ${JSON.stringify(value)}`;
    });
    const file = join(this.options.dir, 'config', `${name}.yaml`);
    mkdirSync(join(this.options.dir, 'config'), { recursive: true, mode: 0o755 });
    writeFileSync(file, `# written by the namespace-cluster harness\n${lines.join('\n')}\n`, { mode: 0o644 });
    return ['--config', file];
  }

  /** The executables (options.bin, else the source tree's bin files, run by their #! line). */
  get bin(): { coordinator: string; agent: string; slotctl: string } {
    return this.options.bin ?? BIN;
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`;
  }

  get switchNs(): string {
    return this.ns('sw');
  }

  address(host: string): string {
    if (host === 'co') return `${SUBNET}.0.1`;
    if (host === 'cl') return `${SUBNET}.0.2`;
    if (/^c\d+$/.test(host)) return `${SUBNET}.0.${10 + Number(host.slice(1))}`;
    if (/^e\d+$/.test(host)) return `${SUBNET}.0.${20 + Number(host.slice(1))}`;
    return `${SUBNET}.1.${Number(host.slice(1))}`;
  }

  /** Where agents and slotctl find the coordinator: with `ha`, every coordinator's address. */
  get coordinatorTarget(): string {
    if (this.ha) return this.ha.coordinators.map((c) => `${this.address(c)}:${COORDINATOR_PORT}`).join(',');
    return `${this.address('co')}:${COORDINATOR_PORT}`;
  }

  /** Runs a command inside a host's namespace. */
  exec(host: string, args: string[], input?: string) {
    return execa('ip', ['netns', 'exec', this.ns(host), ...args], { reject: false, ...(input === undefined ? {} : { input }) });
  }

  /** slotctl, run in the coordinator's namespace. */
  async slotctl(args: string[], input?: string) {
    return this.exec('co', [this.bin.slotctl, '--coordinator', this.coordinatorTarget, ...tlsArgs(this.pkiDir, HARNESS_OPERATOR), ...args], input);
  }

  /**
   * A long-lived admin client in the coordinator's namespace (tools/operation-driver.ts): commands and answers as
   * JSON lines, with no CLI start per call (0.5 s idle, over 2 s beside two busy loops), so a request can follow
   * another event within milliseconds. An answer with `error` rejects.
   */
  operationDriver(): OperationDriver {
    const child = execa('ip', ['netns', 'exec', this.ns('co'), 'node', '--import', 'tsx', join(ROOT, 'tools', 'operation-driver.ts'), this.coordinatorTarget], { stdin: 'pipe', reject: false, env: this.operatorEnv });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    return {
      async run<T>(cmd: object): Promise<T> {
        child.stdin!.write(`${JSON.stringify(cmd)}\n`);
        const next = await lines.next();
        if (next.done) throw new Error(`the operation driver ended before answering ${JSON.stringify(cmd)}`);
        const answer = JSON.parse(next.value as string) as T & { error?: string };
        if (answer.error) throw new Error(answer.error);
        return answer;
      },
      close: () => void child.stdin!.end(),
    };
  }

  async slotctlJson<T>(args: string[]): Promise<T> {
    const result = await this.slotctl([...args, '--json']);
    if (result.exitCode !== 0 && result.exitCode !== 3) throw new Error(`slotctl ${args.join(' ')}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  /** Builds the network: switch with a bridge, one namespace per host, a veth from each into the bridge. */
  async createNetwork(): Promise<void> {
    const t = performance.now();
    // we hold the lock, so no live cluster owns namespaces of our prefix: any there are a killed run's leftovers
    const stale = cleanupNetns(undefined, `${this.prefix}-`).namespaces;
    if (stale.length) this.log(`removed ${stale.length} namespace(s) a killed run left: ${stale.join(' ')}`);
    await sh(['ip', 'netns', 'add', this.switchNs]);
    const ownTables = await this.giveChildrenOwnTcpTables();
    await sh(['ip', '-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await sh(['ip', '-n', this.switchNs, 'link', 'set', 'br0', 'up']);
    for (const host of this.hosts) {
      const ns = this.ns(host);
      const port = `p-${host}`;
      await this.addNamespace(ns, ownTables);
      await sh(['ip', '-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await sh(['ip', '-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
      await sh(['ip', '-n', ns, 'addr', 'add', `${this.address(host)}/16`, 'dev', 'eth0']);
      await sh(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
      await sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    this.log(`network of ${this.machines.length} machines built in ${Math.round(performance.now() - t)} ms`);
  }

  /**
   * Namespaces made by `ip netns add` share the host's TCP hash table (262,144 buckets on a large host): every read of
   * /proc/net/tcp inside one walks all of it (1–65 ms under load), which the agents' and Cyrus' tools do, and the
   * split-brain watch once as it starts. A namespace created from one whose net.ipv4.tcp_child_ehash_entries is set gets a table of its
   * own (Linux ≥ 6.1); the switch namespace is that parent, so the host's own setting is never touched. 16,384
   * buckets, not fewer: the kernel sizes a namespace's TIME_WAIT limit (half) and SYN backlog from it, and the mail
   * load leaves thousands of TIME_WAIT sockets in the client namespace.
   */
  private async giveChildrenOwnTcpTables(): Promise<boolean> {
    const set = await execa('ip', ['netns', 'exec', this.switchNs, 'sysctl', '-qw', 'net.ipv4.tcp_child_ehash_entries=16384'], { reject: false });
    if (set.exitCode !== 0) this.log(`namespaces share the host's TCP table (${set.stderr.trim() || 'no tcp_child_ehash_entries'})`);
    return set.exitCode === 0;
  }

  /** `ip netns add`, but created from inside the switch namespace so that it inherits its child TCP table size. */
  private async addNamespace(ns: string, ownTable: boolean): Promise<void> {
    if (!ownTable) {
      await sh(['ip', 'netns', 'add', ns]);
      return;
    }
    const file = `/run/netns/${ns}`;
    writeFileSync(file, '', { flag: 'wx', mode: 0o444 }); // wx: never reuse (or follow) something already there
    try {
      await sh(['nsenter', `--net=/run/netns/${this.switchNs}`, 'unshare', `--net=${file}`, 'true']);
    } catch (err) {
      rmSync(file, { force: true });
      throw err;
    }
  }

  /** Every namespace of the network (the switch aside). */
  get hosts(): string[] {
    return ['co', 'cl', ...this.machines, ...(this.ha?.hosts ?? [])];
  }

  daemon(name: string, host: string, args: string[], env: Record<string, string> = {}): Daemon {
    // each in a session of its own, as on a real host (its PID file lets cleanup find it)
    const daemon = new Daemon(name, ['/usr/sbin/ip', 'netns', 'exec', this.ns(host), ...args], join(this.options.dir, 'logs', `${name}.log`), env, { ownSession: true });
    writeFileSync(join(this.options.dir, 'pids', `${name}.pid`), `${daemon.pid}\n`);
    return daemon;
  }

  /** `env` reaches the coordinator process (e.g. the SLOTCTL_TEST_CRASH_AT hook). */
  /** `answer: false`: returns once started, without waiting for it to answer (one that is meant to die soon). */
  async startCoordinator(env: Record<string, string> = {}, { answer = true }: { answer?: boolean } = {}): Promise<void> {
    if (this.ha) return this.ha.start(env);
    const settings = { listen: this.coordinatorTarget, 'data-dir': join(this.options.dir, 'coordinator'), ...tlsSettings(this.pkiDir, HARNESS_COORDINATOR) };
    this.coordinator = this.daemon('coordinator', 'co', [this.bin.coordinator, ...this.settingsArgs('coordinator', settings), ...(this.options.coordinatorArgs ?? [])], env);
    if (!answer) return;
    await waitFor('the coordinator to answer', async () => ((await this.slotctl(['machine', 'list', '--json'])).exitCode === 0 ? true : undefined), 15_000, 100);
    this.log('coordinator started');
  }

  /** The running coordinator process (tests wait for a hook to kill it). */
  get coordinatorProcess(): Daemon | undefined {
    return this.coordinator;
  }

  async stopCoordinator(): Promise<void> {
    await this.ha?.stopAll();
    await this.coordinator?.stop();
    this.log('coordinator stopped');
  }

  startAgent(machine: string): Daemon {
    const settings: Record<string, string | boolean | string[]> = {
      machine, coordinator: this.coordinatorTarget, 'state-dir': this.stateDir(machine), auth: 'test',
      ...tlsSettings(this.pkiDir, { role: 'agent', name: machine }), 'vip-driver': 'ip', 'vip-interface': 'eth0',
      ...(this.options.agentsKeepSlots ? {} : { 'stop-slots-on-exit': true }),
    };
    const agent = this.daemon(`agent-${machine}`, machine, [this.bin.agent, ...this.settingsArgs(`agent-${machine}`, settings), ...(this.options.agentArgs ?? [])], this.options.agentEnv?.(machine));
    this.agents.set(machine, agent);
    return agent;
  }

  /** SIGTERM to the agent, wait for it to end (its slots keep serving with agentsKeepSlots), start it again. */
  async restartAgent(machine: string): Promise<Daemon> {
    await this.agents.get(machine)?.stop(30_000);
    this.log(`restartAgent(${machine})`);
    return this.startAgent(machine);
  }

  /** The agent's --state-dir (its fence's PID file is there). */
  stateDir(machine: string): string {
    return join(this.options.dir, 'agents', machine);
  }

  agentPid(machine: string): number {
    return this.agents.get(machine)!.pid;
  }

  /** The cluster file: each machine's masters have their replicas on the following machines, round robin. */
  clusterYaml(): string {
    const lines = ['machines:'];
    // one disk per machine, so that a slot moved to another machine (re-replication) gets its own directories
    for (const m of this.machines) {
      const n = Number(m.slice(1));
      if (this.options.slotPools && n > 11) throw new Error('slotPools: at most 11 machines (10.231.6.x)');
      const pool = this.options.slotPools ? `, slot_ips: ["${SUBNET}.6.${n * 20}-${SUBNET}.6.${n * 20 + 19}"]` : '';
      lines.push(`  - { name: ${m}, address: ${this.address(m)}, disks: [{ name: d0, path: ${join(this.options.dir, 'srv', m)}, class: hdd }]${pool} }`);
    }
    lines.push('stores:');
    this.layout().forEach(({ name, master, replica }, i) => {
      const s = i + 1;
      lines.push(`  - name: ${name}`, `    service_ip: ${SUBNET}.3.${s}`, `    master: ${master}`, '    slots:');
      for (const [host, octet] of [[master, 2], [replica, 4]] as const) {
        const root = join(this.options.dir, 'srv', host, name);
        lines.push(`      - { machine: ${host}, ip: ${SUBNET}.${octet}.${s}, data_path: ${root}/data, meta_path: ${root}/meta }`);
      }
    });
    return `${lines.join('\n')}\n`;
  }

  /** A slot's data or meta partition, as the cluster file names it. */
  partitionPath(machine: string, store: string, partition: 'data' | 'meta'): string {
    return join(this.options.dir, 'srv', machine, store, partition);
  }

  /**
   * Takes every free byte of a slot's partition with a file of real blocks (a sparse one would take nothing) until
   * the filesystem says it is full; removing `file` frees them again.
   */
  fillPartition(machine: string, store: string, partition: 'data' | 'meta', name: string): { file: string; written: number; free: number } {
    const path = this.partitionPath(machine, store, partition);
    const file = join(path, name);
    const fs = statfsSync(path);
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    const fd = openSync(file, 'wx', 0o600);
    let written = 0;
    try {
      for (;;) written += writeSync(fd, chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    } finally {
      closeSync(fd);
    }
    return { file, written, free: fs.bavail * fs.bsize };
  }

  /** Every slot's partitions on a tmpfs of `mb` MiB each (unmounted by destroy(), or by cleanup after a killed run). */
  private async mountPartitions(mb: number): Promise<void> {
    for (const { name, master, replica } of this.layout()) {
      for (const machine of [master, replica]) {
        for (const partition of ['data', 'meta'] as const) {
          const path = this.partitionPath(machine, name, partition);
          mkdirSync(path, { recursive: true, mode: 0o755 });
          await sh(['mount', '-t', 'tmpfs', '-o', `size=${mb}m,mode=0755,nosuid,nodev`, `slotctl-test-${this.options.id}`, path]);
        }
      }
    }
    this.log(`partitions on tmpfs of ${mb} MiB each`);
  }

  private layout(): { name: string; master: string; replica: string }[] {
    if (this.options.stores) return this.options.stores;
    const out: { name: string; master: string; replica: string }[] = [];
    const n = this.machines.length;
    const perMachine = Math.floor(this.slotsPerMachine / 2);
    this.machines.forEach((m, i) => {
      for (let k = 0; k < perMachine; k++) out.push({ name: `${this.options.storePrefix ?? 'n'}${String(out.length + 1).padStart(2, '0')}`, master: m, replica: this.machines[(i + 1 + k) % n]! });
    });
    return out;
  }

  /**
   * Clusters of different test files run one at a time: on a 2-core host two clusters of 40 Cyrus instances each
   * starved a coordinator for seconds (leases lapsed and masters were fenced at start-up). Light tests still run
   * beside them. The lock is a directory naming its holder's PID; a dead holder's lock is taken over.
   */
  async lock(): Promise<void> {
    if (this.locked) return; // taken already (a test that sets up its load before start)
    const started = Date.now();
    for (;;) {
      try {
        mkdirSync(CLUSTER_LOCK);
        writeFileSync(join(CLUSTER_LOCK, 'holder'), `${process.pid} ${this.options.dir}\n`);
        this.locked = true;
        if (Date.now() - started > 1000) this.log(`waited ${Math.round((Date.now() - started) / 1000)} s for another namespace cluster to end`);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        removeStaleLock();
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private unlock(): void {
    if (this.locked) rmSync(CLUSTER_LOCK, { recursive: true, force: true });
    this.locked = false;
  }

  /** Network, coordinator, cluster file, agents; resolves when every slot serves. */
  async start(options: { servingTimeoutMs?: number } = {}): Promise<number> {
    await this.lock();
    const t = performance.now();
    await this.createNetwork();
    if (this.options.partitionFsMb) await this.mountPartitions(this.options.partitionFsMb);
    await this.startCoordinator();
    const applied = await this.slotctl(['cluster', 'apply', '-'], this.clusterYaml());
    if (applied.exitCode !== 0) throw new Error(`cluster apply failed: ${applied.stdout}${applied.stderr}`);
    for (const m of this.machines) this.startAgent(m);
    await this.waitServing(options.servingTimeoutMs);
    const ms = performance.now() - t;
    this.log(`cluster of ${this.machines.length} × ${this.slotsPerMachine} up in ${Math.round(ms)} ms`);
    return ms;
  }

  async slots(): Promise<{ name: string; machine: string; state: string; ip: string; store: string; desiredRole: string; lastError: string }[]> {
    return this.slotctlJson(['slot', 'list']);
  }

  /**
   * Every slot reported SERVING. 180 s by default: 40 Cyrus instances starting on a slower or busier machine than
   * this one must not fail a test whose subject is something else (the starvation test shows they come up beside
   * two busy loops); a timeout names the slots that were not serving, with their state and last error.
   */
  async waitServing(timeoutMs = 180_000): Promise<void> {
    let waiting = 'no slot reported yet';
    try {
      await waitFor('every slot to serve', async () => {
        const slots = await this.slots();
        const not = slots.filter((s) => s.state !== 'SERVING');
        waiting = slots.length === 0 ? 'no slot reported yet' : not.map((s) => `${s.name} ${s.state}${s.lastError ? ` (${s.lastError})` : ''}`).join(', ');
        return slots.length > 0 && not.length === 0 ? true : undefined;
      }, timeoutMs, 250);
    } catch (err) {
      throw new Error(`${(err as Error).message}; not serving: ${waiting}${await this.silentAgents()}`);
    }
  }

  /**
   * For a start-up that timed out: each machine none of whose slots has reported, with its agent's process state,
   * the coordinator's view of the machine and the agent's last log lines (a slot that never reported says nothing).
   */
  private async silentAgents(): Promise<string> {
    let slots: { machine: string; state: string }[] = [];
    let machines: { name: string; state?: string; connected?: boolean }[] = [];
    try {
      [slots, machines] = await Promise.all([this.slots(), this.slotctlJson<typeof machines>(['machine', 'list'])]);
    } catch (err) {
      return `; (slotctl failed: ${(err as Error).message})`;
    }
    const silent = this.machines.filter((m) => slots.filter((s) => s.machine === m).every((s) => s.state === 'unknown'));
    return silent.map((m) => `\n  ${this.agentStatus(m, 12)}; coordinator says ${JSON.stringify(machines.find((x) => x.name === m) ?? 'unknown machine')}`).join('');
  }

  /** A machine's agent process as the harness knows it (running, exited with its code, or not started) and its last log lines: for a wait that timed out. */
  agentStatus(machine: string, lines = 8): string {
    const agent = this.agents.get(machine);
    const running = !agent ? 'not started' : agent.exited ? `exited (code ${agent.exitCode ?? 'signal'})` : `running (pid ${agent.pid})`;
    const tail = agent ? logTail(agent.logFile, lines) : [];
    return `agent ${machine}: ${running}; its log ends:\n    ${tail.join('\n    ')}`;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Faults. Each returns when it has taken effect and says what it did.

  /**
   * A power cut: kill -9 of the agent, its fence and every Cyrus process of the machine, and the machine is off the
   * network (its switch port down) with the addresses it had taken gone, as after a reboot. `powerOn` brings it back.
   */
  async crash(machine: string): Promise<void> {
    await this.agents.get(machine)?.crash();
    killSlotsUnder(join(this.options.dir, 'agents', machine)); // its fence process
    const killed = killSlotsUnder(join(this.options.dir, 'srv', machine));
    await sh(['ip', '-n', this.switchNs, 'link', 'set', `p-${machine}`, 'down']);
    const own = `${this.address(machine)}/16`;
    for (const line of (await sh(['ip', '-n', this.ns(machine), '-o', '-4', 'addr', 'show', 'dev', 'eth0'])).split('\n')) {
      const cidr = line.match(/inet (\S+)/)?.[1];
      if (cidr && cidr !== own) await sh(['ip', '-n', this.ns(machine), 'addr', 'del', cidr, 'dev', 'eth0']);
    }
    this.log(`crash(${machine}): agent, fence and ${killed.length} cyrmaster group(s) killed, off the network`);
  }

  /** The crashed machine boots: back on the network, its agent starts (its slots come back as the agent decides). */
  async powerOn(machine: string): Promise<void> {
    await sh(['ip', '-n', this.switchNs, 'link', 'set', `p-${machine}`, 'up']);
    this.startAgent(machine);
    this.log(`powerOn(${machine})`);
  }

  /** kill -9 of the agent alone: its Cyrus slots keep running, as after an agent bug. */
  async killAgent(machine: string): Promise<void> {
    await this.agents.get(machine)?.crash();
    this.log(`killAgent(${machine})`);
  }

  /** The machine's sync port (2005) answers every connection with a reset: its replicas receive nothing. */
  async blockSync(machine: string): Promise<void> {
    const nft = ['ip', 'netns', 'exec', this.ns(machine), 'nft'];
    await sh([...nft, 'add', 'table', 'inet', 'sltblock']);
    await sh([...nft, 'add', 'chain', 'inet', 'sltblock', 'input', '{ type filter hook input priority 0; policy accept; }']);
    await sh([...nft, 'add', 'rule', 'inet', 'sltblock', 'input', 'tcp', 'dport', '2005', 'reject', 'with', 'tcp', 'reset']);
    this.log(`blockSync(${machine})`);
  }

  async unblockSync(machine: string): Promise<void> {
    await sh(['ip', 'netns', 'exec', this.ns(machine), 'nft', 'delete', 'table', 'inet', 'sltblock']);
    this.log(`unblockSync(${machine})`);
  }

  /** Starts tools/load-generator.ts in the client namespace; `stop()` ends it and returns its summary. */
  startLoad(name: string, targets: { store: string; host: string; users: string[] }[], rate: number): { out: string; stop: () => Promise<LoadSummary> } {
    const out = join(this.options.dir, `${name}.ndjson`);
    const daemon = this.daemon(name, 'cl', ['/usr/bin/env', 'node', '--import', 'tsx', join(ROOT, 'tools', 'load-generator.ts'), '--targets', JSON.stringify(targets), '--rate', String(rate), '--out', out, '--prefix', name]);
    return {
      out,
      stop: async () => {
        await daemon.stop(90_000);
        // the generator's last record is its summary, with the messages still in flight
        const { inFlightMessages, ...summary } = JSON.parse(readFileSync(out, 'utf8').trim().split('\n').at(-1)!) as Omit<LoadSummary, 'inFlightByStore'> & { inFlightMessages: { store: string }[] };
        const inFlightByStore: Record<string, number> = {};
        for (const m of inFlightMessages) inFlightByStore[m.store] = (inFlightByStore[m.store] ?? 0) + 1;
        return { ...summary, inFlightByStore };
      },
    };
  }

  /**
   * A loaded host: `n` processes that spin (`sh -c 'while :; do :; done'`), at the normal priority like any
   * workload. Their PID files let destroy() (and `pnpm test:cleanup`) end them; `stopBusy` ends them now.
   */
  startBusy(n: number): void {
    for (let i = 0; i < n; i++) {
      // the test directory as $0 puts it on the command line, which is how cleanup recognises its processes
      this.busy.push(this.daemon(`busy-${i}`, 'cl', ['sh', '-c', 'while :; do :; done', `busy-${this.options.dir}`]));
    }
    this.log(`startBusy(${n})`);
  }

  async stopBusy(): Promise<void> {
    await Promise.all(this.busy.map((b) => b.stop(1000)));
    this.busy = [];
    this.log('stopBusy()');
  }

  /** Link down: the machine is cut from everyone. */
  async isolate(machine: string): Promise<void> {
    await sh(['ip', '-n', this.switchNs, 'link', 'set', `p-${machine}`, 'down']);
    this.log(`isolate(${machine}): switch port down`);
  }

  /** A partition between two machines only; both still reach everyone else. */
  async cut(a: string, b: string): Promise<void> {
    if (this.cuts === 0) {
      await sh(['ip', 'netns', 'exec', this.switchNs, 'nft', 'add', 'table', 'bridge', 'sltcut']);
      await sh(['ip', 'netns', 'exec', this.switchNs, 'nft', 'add', 'chain', 'bridge', 'sltcut', 'forward', '{ type filter hook forward priority 0; policy accept; }']);
    }
    for (const [from, to] of [[a, b], [b, a]]) {
      await sh(['ip', 'netns', 'exec', this.switchNs, 'nft', 'add', 'rule', 'bridge', 'sltcut', 'forward', 'iifname', `p-${from}`, 'oifname', `p-${to}`, 'drop']);
    }
    this.cuts++;
    this.log(`cut(${a}, ${b}): frames between them dropped at the switch`);
  }

  /** Undoes every cut and isolation. */
  async heal(): Promise<void> {
    if (this.cuts > 0) await sh(['ip', 'netns', 'exec', this.switchNs, 'nft', 'delete', 'table', 'bridge', 'sltcut']);
    this.cuts = 0;
    // one `ip` for every port: a process per port took seconds in all on a loaded host, and a blip meant to last
    // 1–2 s lasted that much longer for the machines late in the list
    const up = this.hosts.map((host) => `link set p-${host} up`).join('\n');
    // -force: a port that fails does not leave the ports after it down
    const result = await execa('ip', ['-n', this.switchNs, '-force', '-batch', '-'], { input: `${up}\n`, reject: false });
    if (result.exitCode !== 0) throw new Error(`ip -batch (links up) failed: ${result.stderr || result.stdout}`);
    this.log('heal(): all links up, no cuts');
  }

  /** The agent's log (pino JSON lines, every agent of the machine started by this cluster). */
  agentLogFile(machine: string): string {
    const agent = this.agents.get(machine);
    if (!agent) throw new Error(`no agent was started for ${machine}`);
    return agent.logFile;
  }

  /** A hung agent (SIGSTOP); `resumeAgent` continues it. */
  pauseAgent(machine: string): void {
    process.kill(this.agentPid(machine), 'SIGSTOP');
    this.log(`pauseAgent(${machine})`);
  }

  resumeAgent(machine: string): void {
    process.kill(this.agentPid(machine), 'SIGCONT');
    this.log(`resumeAgent(${machine})`);
  }

  /** Runs tools/mail-cli.ts in the client namespace: mail in and out as a user on the network sees it. */
  async mail<T>(command: 'deliver' | 'subjects' | 'mailboxes' | 'bulk' | 'file' | 'folder' | 'expunge' | 'rmfolder', requests: { host: string; user?: string; users?: string[]; subject?: string; count?: number; folder?: string; bytes?: number }[]): Promise<T> {
    const result = await this.exec('cl', ['node', '--import', 'tsx', join(ROOT, 'tools', 'mail-cli.ts'), command, JSON.stringify(requests)]);
    if (result.exitCode !== 0) throw new Error(`mail ${command} failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  /** True when `from` can open a TCP connection to host:port (run inside `from`'s namespace). */
  async canConnect(from: string, host: string, port: number): Promise<boolean> {
    const script = `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});s.setTimeout(1000);s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1));s.on('timeout',()=>process.exit(2));`;
    return (await this.exec(from, ['node', '-e', script])).exitCode === 0;
  }

  /** Stops everything this cluster started and removes its namespaces (and with them the bridge and veths). */
  async destroy(): Promise<void> {
    const t = performance.now();
    for (const agent of this.agents.values()) {
      try {
        process.kill(agent.pid, 'SIGCONT');
      } catch {
        // not running
      }
    }
    await this.stopBusy();
    await Promise.all([...this.agents.values()].map((a) => a.stop(15_000)));
    await this.coordinator?.stop();
    await this.ha?.destroy();
    cleanupNetns(this.options.dir, this.prefix);
    unmountUnder(this.options.dir);
    this.unlock();
    this.log(`destroyed in ${Math.round(performance.now() - t)} ms`);
  }
}
