// A real etcd cluster for tests and benchmarks of the coordinator's etcd backend: 1, 3 (or more) members with mutual
// TLS on the client and the peer ports, each on 127.0.0.1 with ports of its own or inside a network namespace at its
// address there. Every member gets a certificate from the etcd CA for the address it listens on (`slotctl pki issue
// etcd`) and trusts that CA only; clients use an etcd-client certificate (`slotctl pki issue etcd-client`), as the
// coordinators do: the harness proves both work with a real etcd, and that certificates of the cluster CA do not.
// A library, not a test file: `startEtcd(…)` resolves when every member is healthy.
//
// Processes are signalled by PID only; each member's PID is written to PIDDIR/etcd-NAME.pid, and its command line
// names its data directory, so `pnpm test:cleanup` (test/cluster/cleanup.ts) ends what a killed run left.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { assertName, tlsPaths, type TlsPaths } from '@slotctl/shared';
import { issueToDirectory } from '@slotctl/shared/pki';
import { freePorts } from '../../tools/ports.js';
import { HARNESS_ETCD_CLIENT, ensureCertificates } from '../../tools/test-pki.js';
import { removeDir, tempDir } from './fixtures.js';

const ETCD = 'etcd';
const ETCDCTL = 'etcdctl';

export interface EtcdMemberSpec {
  name: string;
  /** The address it listens on and is dialled at (its certificate's IP SAN): 127.0.0.1, or its address in `netns`. */
  host?: string;
  /** Runs it inside this network namespace (`ip netns exec NS etcd …`); `host` must then be given. */
  netns?: string;
  /** Default: a free port of `host`; 2379 and 2380 inside a namespace, which has a network stack of its own. */
  clientPort?: number;
  peerPort?: number;
}

export interface StartEtcdOptions {
  /** How many members (named e1, e2…), or each one. */
  members: number | readonly (string | EtcdMemberSpec)[];
  /** The PKI directory with the CAs: default the run's (SLOTCTL_TEST_PKI_DIR), else one made under `dir`. */
  pkiDir?: string;
  /** Whose certificate clients (etcd3, etcdctl) use: default the harness coordinator's etcd-client certificate. */
  client?: { role: string; name: string };
  /** Where data, logs and member certificates go: default a new temp directory, which stop() removes. */
  dir?: string;
  /** Where the PID files go (default DIR/pids): a namespace cluster passes its own, with `dir` under its directory. */
  pidDir?: string;
  /** Raft timings, short for fast tests: a leader lost is replaced within about an election timeout. */
  heartbeatMs?: number;
  electionMs?: number;
  /** More etcd flags for every member. `--max-txn-ops` is left at etcd's default (128) on purpose: the product must cope. */
  extraArgs?: readonly string[];
  /** How long start may take until every member is healthy (default 20 s). */
  startTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface EtcdMemberInfo {
  name: string;
  /** The process of its last start (also after it was killed). */
  pid: number | undefined;
  running: boolean;
  paused: boolean;
  clientUrl: string;
  peerUrl: string;
  netns: string | undefined;
  dataDir: string;
  logFile: string;
}

export interface EtcdHealth {
  name: string;
  endpoint: string;
  healthy: boolean;
  error?: string;
}

/** The client's TLS files as etcd3's `credentials` option wants them. */
export interface Etcd3Credentials {
  rootCertificate: Buffer;
  privateKey: Buffer;
  certChain: Buffer;
}

/** A start that failed: the message names the member and ends with its last log lines. Nothing is left running. */
export class EtcdStartError extends Error {
  override readonly name = 'EtcdStartError';
}

/** A harness call that cannot be done: an unknown member, a start of one that runs, options that do not fit. */
export class EtcdHarnessError extends Error {
  override readonly name = 'EtcdHarnessError';
}

interface Member extends Required<Omit<EtcdMemberSpec, 'netns'>> {
  netns: string | undefined;
  dataDir: string;
  logFile: string;
  cert: TlsPaths;
  /** The process of its last start, and what its end says. */
  pid: number | undefined;
  exited: Promise<{ exitCode?: number; signal?: string }> | undefined;
  running: boolean;
  paused: boolean;
}

const url = (host: string, port: number) => `https://${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The environment without ETCD_* and ETCDCTL_* variables: etcd and etcdctl take each as a flag. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^ETCD(CTL)?_/.test(e[0])));
}

const describeEnd = (end: { exitCode?: number; signal?: string } | undefined) => (end?.signal ? `killed by ${end.signal}` : `exit code ${end?.exitCode ?? 'unknown'}`);

function tail(path: string, n: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-n).join('\n    ');
  } catch {
    return '(no log)';
  }
}

export class EtcdTestCluster {
  readonly dir: string;
  readonly clientTls: TlsPaths;
  private readonly members = new Map<string, Member>();
  private readonly ownDir: boolean;
  private readonly pidDir: string;
  private readonly pkiDir: string;
  private readonly log: (line: string) => void;
  private started = false;
  private stopped = false;
  /** Ends the etcdctl calls still under way when the cluster stops. */
  private readonly etcdctlCalls = new AbortController();

  constructor(private readonly options: StartEtcdOptions) {
    const given = typeof options.members === 'number' ? Array.from({ length: options.members }, (_, i) => `e${i + 1}`) : options.members;
    const specs = given.map((g) => (typeof g === 'string' ? { name: g } : g));
    // checked before anything is made, so that a refusal leaves nothing behind
    if (specs.length === 0) throw new EtcdHarnessError('an etcd cluster needs at least one member');
    for (const spec of specs) {
      assertName(spec.name, 'etcd member name'); // it names files and flags
      if (specs.filter((s) => s.name === spec.name).length > 1) throw new EtcdHarnessError(`etcd member ${spec.name} is named twice`);
      if (spec.netns && !spec.host) throw new EtcdHarnessError(`etcd member ${spec.name} runs in ${spec.netns}: give its address there (host)`);
    }
    this.ownDir = options.dir === undefined;
    this.dir = options.dir ?? tempDir('etcd');
    this.pidDir = options.pidDir ?? join(this.dir, 'pids');
    this.pkiDir = options.pkiDir ?? process.env.SLOTCTL_TEST_PKI_DIR ?? join(this.dir, 'pki');
    this.log = options.log ?? (() => undefined);
    this.clientTls = tlsPaths(this.pkiDir, options.client ?? HARNESS_ETCD_CLIENT);
    for (const spec of specs) {
      this.members.set(spec.name, {
        name: spec.name,
        host: spec.host ?? '127.0.0.1',
        netns: spec.netns,
        clientPort: spec.clientPort ?? (spec.netns ? 2379 : 0),
        peerPort: spec.peerPort ?? (spec.netns ? 2380 : 0),
        dataDir: join(this.dir, `${spec.name}.data`),
        logFile: join(this.dir, `${spec.name}.log`),
        cert: tlsPaths(join(this.dir, 'tls'), { role: 'etcd', name: spec.name }),
        pid: undefined,
        exited: undefined,
        running: false,
        paused: false,
      });
    }
  }

  get names(): string[] {
    return [...this.members.keys()];
  }

  /** The client URLs of every member, in member order (for etcd3's `hosts`). */
  get endpoints(): string[] {
    return [...this.members.values()].map((m) => url(m.host, m.clientPort));
  }

  clientCredentials(): Etcd3Credentials {
    return { rootCertificate: readFileSync(this.clientTls.ca), privateKey: readFileSync(this.clientTls.key), certChain: readFileSync(this.clientTls.cert) };
  }

  /**
   * Any identity's certificate of the PKI directory (issued if missing, from the CA of its role) with the etcd CA as
   * the root: a client that trusts the members, so that what is seen is etcd's verdict on the certificate alone.
   */
  credentialsFor(identity: { role: string; name: string }): Etcd3Credentials {
    ensureCertificates(this.pkiDir, [identity]);
    const files = tlsPaths(this.pkiDir, identity);
    return { rootCertificate: readFileSync(tlsPaths(this.pkiDir, HARNESS_ETCD_CLIENT).ca), privateKey: readFileSync(files.key), certChain: readFileSync(files.cert) };
  }

  member(name: string): EtcdMemberInfo {
    const m = this.get(name);
    return { name, pid: m.pid, running: m.running, paused: m.paused, clientUrl: url(m.host, m.clientPort), peerUrl: url(m.host, m.peerPort), netns: m.netns, dataDir: m.dataDir, logFile: m.logFile };
  }

  /** Certificates, ports, every member at once (a new cluster needs a quorum to elect), then waits until all are healthy. */
  async start(): Promise<void> {
    if (this.started) throw new EtcdHarnessError('this etcd cluster was started already');
    this.started = true;
    const t = performance.now();
    this.log(`etcd: starting ${this.members.size} member(s) in ${this.dir}`);
    try {
      mkdirSync(this.pidDir, { recursive: true });
      // the etcd CA too, whoever the client is: the members' certificates come from it
      ensureCertificates(this.pkiDir, [HARNESS_ETCD_CLIENT, this.options.client ?? HARNESS_ETCD_CLIENT]);
      for (const m of this.members.values()) {
        // etcd's peer listener wants the address a peer connects from among its IP SANs: on loopback that is
        // 127.0.0.1 whichever 127.x it dials
        const ips = !m.netns && m.host.startsWith('127.') ? [m.host, '127.0.0.1'] : [m.host];
        await issueToDirectory(this.pkiDir, { role: 'etcd', name: m.name }, { out: join(this.dir, 'tls'), altNames: { ips } });
      }
      await this.assignPorts();
      for (const m of this.members.values()) this.spawn(m);
      await this.waitHealthy(undefined, this.options.startTimeoutMs ?? 20_000);
    } catch (err) {
      await this.stop();
      throw err instanceof EtcdStartError ? err : new EtcdStartError(`etcd did not start in ${this.dir}: ${(err as Error).message}`, { cause: err });
    }
    this.log(`etcd: ${this.members.size} member(s) healthy in ${Math.round(performance.now() - t)} ms`);
  }

  /** kill -9 of a member (a crash or a power cut, as its peers see it); resolves when it is gone. */
  async kill(name: string): Promise<void> {
    const m = this.get(name);
    if (!m.running) return;
    this.signal(m, 'SIGKILL');
    await m.exited;
    this.log(`etcd: killed ${name}`);
  }

  /** SIGSTOP: a hung member (its connections stay open, nothing answers). */
  pause(name: string): void {
    const m = this.get(name);
    if (!m.running) throw new EtcdHarnessError(`etcd member ${name} is not running`);
    this.signal(m, 'SIGSTOP');
    m.paused = true;
  }

  resume(name: string): void {
    const m = this.get(name);
    if (m.running) this.signal(m, 'SIGCONT');
    m.paused = false;
  }

  /** Starts a killed member again from its data directory; resolves when it is healthy (so the cluster has a quorum). */
  async restart(name: string, timeoutMs = 15_000): Promise<void> {
    const m = this.get(name);
    if (m.running) throw new EtcdHarnessError(`etcd member ${name} is running`);
    if (this.stopped) throw new EtcdHarnessError('this etcd cluster was stopped');
    this.spawn(m);
    await this.waitHealthy([name], timeoutMs);
  }

  /**
   * Each member's answer to `etcdctl endpoint health` with the client certificate (a quorum read: a member without a
   * quorum is unhealthy), asked from inside its namespace. A killed or paused member is not asked.
   */
  async health(names: readonly string[] = this.names): Promise<EtcdHealth[]> {
    return Promise.all(names.map(async (name) => {
      const m = this.get(name);
      const endpoint = url(m.host, m.clientPort);
      if (!m.running) return { name, endpoint, healthy: false, error: 'not running' };
      if (m.paused) return { name, endpoint, healthy: false, error: 'paused' };
      const r = await this.etcdctl(m, ['endpoint', 'health', '-w', 'json']);
      try {
        const [answer] = JSON.parse(r.stdout) as { health: boolean; error?: string }[];
        return { name, endpoint, healthy: answer?.health === true, ...(answer?.health ? {} : { error: answer?.error ?? r.stderr.trim() }) };
      } catch {
        return { name, endpoint, healthy: false, error: r.stderr.trim() || `etcdctl exited with ${r.exitCode}` };
      }
    }));
  }

  /** Waits until the members named are healthy; fails at once when one of them exits. */
  async waitHealthy(names: readonly string[] = this.names, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const members = names.map((n) => this.get(n));
      const gone = members.find((m) => !m.running);
      if (gone) throw new EtcdStartError(`etcd member ${gone.name} is not running (${describeEnd(await gone.exited)}); its log ends:\n    ${tail(gone.logFile, 15)}`);
      // an exit ends the wait at once: asking a member whose port someone else holds takes the whole command timeout
      const health = await Promise.race([this.health(names), ...members.map((m) => m.exited!.then(() => undefined))]);
      if (!health) continue;
      if (health.every((h) => h.healthy)) return;
      if (Date.now() > deadline) {
        const sick = health.filter((h) => !h.healthy);
        throw new EtcdStartError(`etcd not healthy after ${timeoutMs} ms: ${sick.map((h) => `${h.name} (${h.error})`).join(', ')}; the log of ${sick[0]!.name} ends:\n    ${tail(this.get(sick[0]!.name).logFile, 15)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The member that says it is the leader, asking every running one; undefined while there is none. */
  async leader(): Promise<string | undefined> {
    const answers = await Promise.all([...this.members.values()].filter((m) => m.running && !m.paused).map(async (m) => {
      const { stdout } = await this.etcdctl(m, ['endpoint', 'status', '-w', 'json']);
      // member IDs are 64-bit: compared as the digits etcdctl printed, never as JSON numbers
      const id = /"member_id":(\d+)/.exec(stdout)?.[1];
      const leader = /"leader":(\d+)/.exec(stdout)?.[1];
      return id && id === leader ? m.name : undefined;
    }));
    return answers.find((a) => a !== undefined);
  }

  /**
   * kill -9 of every member, then removes the directory unless KEEP_TEST_DIRS=1 (only one the harness made). Not
   * SIGTERM: a stopping leader first hands its leadership to a peer, which never completes while the peers stop too
   * (5 s each time); etcd's WAL is fsynced at every commit, so a kept directory is whole anyway.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.etcdctlCalls.abort();
    await Promise.all([...this.members.values()].map(async (m) => {
      if (!m.running) return;
      this.signal(m, 'SIGKILL');
      await m.exited;
    }));
    for (const m of this.members.values()) rmSync(join(this.pidDir, `etcd-${m.name}.pid`), { force: true });
    if (this.ownDir) removeDir(this.dir);
    this.log('etcd: stopped');
  }

  private get(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new EtcdHarnessError(`no etcd member ${name} (members: ${this.names.join(', ')})`);
    return m;
  }

  private async assignPorts(): Promise<void> {
    const byHost = new Map<string, Member[]>();
    for (const m of this.members.values()) if (!m.netns) byHost.set(m.host, [...(byHost.get(m.host) ?? []), m]);
    for (const [host, members] of byHost) {
      const ports = await freePorts(members.length * 2, host);
      members.forEach((m, i) => {
        m.clientPort ||= ports[2 * i]!;
        m.peerPort ||= ports[2 * i + 1]!;
      });
    }
  }

  private args(m: Member): string[] {
    const cluster = [...this.members.values()].map((p) => `${p.name}=${url(p.host, p.peerPort)}`).join(',');
    const tls = (prefix: string) => [`--${prefix}cert-file`, m.cert.cert, `--${prefix}key-file`, m.cert.key, `--${prefix}trusted-ca-file`, m.cert.ca, `--${prefix}client-cert-auth`];
    return [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', url(m.host, m.clientPort), '--advertise-client-urls', url(m.host, m.clientPort),
      '--listen-peer-urls', url(m.host, m.peerPort), '--initial-advertise-peer-urls', url(m.host, m.peerPort),
      // the token keeps members of two harnesses apart should one reuse a port the other had
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', basename(this.dir),
      ...tls(''), ...tls('peer-'),
      '--heartbeat-interval', String(this.options.heartbeatMs ?? 100), '--election-timeout', String(this.options.electionMs ?? 1000),
      '--logger', 'zap', '--log-outputs', 'stderr',
      ...(this.options.extraArgs ?? []),
    ];
  }

  private spawn(m: Member): void {
    const command = m.netns ? ['ip', 'netns', 'exec', m.netns, ETCD, ...this.args(m)] : [ETCD, ...this.args(m)];
    // etcd writes its log to the file itself: through a pipe, a test process busy for a moment would stall its logging
    // (execa's types name only descriptors 3–9; any open one works)
    const fd = openSync(m.logFile, 'a') as 3;
    try {
      // `ip netns exec` execs etcd in its own place: the PID is etcd's
      const child = execa(command[0]!, command.slice(1), { stdin: 'ignore', stdout: fd, stderr: fd, reject: false, extendEnv: false, env: cleanEnv() });
      m.pid = child.pid;
      m.running = true;
      m.paused = false;
      m.exited = child.then((r) => {
        m.running = false;
        return { exitCode: r.exitCode, signal: r.signal };
      });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    if (m.pid === undefined) {
      m.running = false;
      throw new EtcdStartError(`cannot start ${command[0]} for etcd member ${m.name} (scripts/setup.sh installs etcd)`);
    }
    writeFileSync(join(this.pidDir, `etcd-${m.name}.pid`), `${m.pid}\n`);
    this.log(`etcd: ${m.name} started (pid ${m.pid}) at ${url(m.host, m.clientPort)}`);
  }

  private signal(m: Member, signal: NodeJS.Signals): void {
    try {
      process.kill(m.pid!, signal);
    } catch {
      // exited meanwhile
    }
  }

  private etcdctl(m: Member, args: string[]) {
    const flags = ['--endpoints', url(m.host, m.clientPort), '--cacert', this.clientTls.ca, '--cert', this.clientTls.cert, '--key', this.clientTls.key, '--dial-timeout', '1s', '--command-timeout', '2s'];
    const command = m.netns ? ['ip', 'netns', 'exec', m.netns, ETCDCTL, ...flags, ...args] : [ETCDCTL, ...flags, ...args];
    return execa(command[0]!, command.slice(1), { reject: false, extendEnv: false, env: cleanEnv(), timeout: 10_000, cancelSignal: this.etcdctlCalls.signal });
  }
}

/** Starts an etcd cluster and resolves when every member is healthy; a start that fails leaves nothing behind. */
export async function startEtcd(options: StartEtcdOptions): Promise<EtcdTestCluster> {
  const cluster = new EtcdTestCluster(options);
  await cluster.start();
  return cluster;
}
