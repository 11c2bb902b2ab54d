// Helpers of bench/coordinator-sessions: the cluster it applies, CPU accounting from /proc, percentiles, the busy
// loops that stand in for a neighbour's load, the simulated-agent processes, and what etcd says of its writes.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from '../tools/local-cluster.js';
import type { EtcdTestCluster } from '../test/support/etcd.js';
import type { FromSim, SimConfig, ToSim } from './sim-agents.js';

const CLK_TCK = 100; // Linux USER_HZ

/** CPU seconds a process has used (user + system). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Percent of one core a process used since `from` (taken with `cpuMark`). */
export function cpuMark(pid: number): { pid: number; cpu: number; at: number } {
  return { pid, cpu: cpuSeconds(pid), at: performance.now() };
}
export function cpuPercentSince(from: { pid: number; cpu: number; at: number } | { pid: number; cpu: number; at: number }[]): number {
  const marks = Array.isArray(from) ? from : [from];
  const wall = (performance.now() - marks[0]!.at) / 1000;
  return round((100 * marks.reduce((n, m) => n + cpuSeconds(m.pid) - m.cpu, 0)) / wall);
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const round = (x: number) => Math.round(x * 100) / 100;

export function latencySummary(values: number[]): { p50: number; p90: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  return { p50: round(percentile(s, 50)), p90: round(percentile(s, 90)), p99: round(percentile(s, 99)), max: round(s.at(-1) ?? NaN) };
}

/** N machines, each with `slots` slots; store i pairs machine i's slot k with machine (i + 1 + k % 4)'s. */
export function clusterJson(machines: number, slots: number): string {
  const ip = (n: number) => `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const ms = Array.from({ length: machines }, (_, i) => ({ name: `m${i}`, address: ip(0x10000 + i) }));
  const stores = [];
  let n = 0;
  for (let i = 0; i < machines; i++) {
    for (let k = 0; k < slots / 2; k++) {
      const peer = (i + 1 + (k % 4)) % machines;
      const name = `st${i}-${k}`;
      stores.push({
        name,
        service_ip: ip(0x200000 + n),
        master: `m${i}`,
        slots: [
          { name: `b${i}-${k}`, machine: `m${i}`, ip: ip(0x400000 + 2 * n), data_path: `/srv/${name}/a/data`, meta_path: `/srv/${name}/a/meta` },
          { name: `b${peer}-${slots / 2 + k}`, machine: `m${peer}`, ip: ip(0x400000 + 2 * n + 1), data_path: `/srv/${name}/b/data`, meta_path: `/srv/${name}/b/meta` },
        ],
      });
      n++;
    }
  }
  return JSON.stringify({ machines: ms, stores });
}

/** `count` busy loops (`sh -c 'while :; do :; done'`), each a process of its own; stopped by PID. */
export function startBusyLoops(count: number): { pids: number[]; stop: () => void } {
  const loops: ResultPromise[] = Array.from({ length: count }, () => execa('sh', ['-c', 'while :; do :; done'], { reject: false, stdio: 'ignore' }));
  return {
    pids: loops.map((l) => l.pid!),
    stop: () => {
      for (const l of loops) if (l.pid) process.kill(l.pid, 'SIGKILL');
    },
  };
}

/** The host's count of connections dropped because an accept queue was full (TcpExt ListenOverflows). */
export function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(' ') ?? [];
  const values = lines[1]?.split(' ') ?? [];
  return Number(values[names.indexOf('ListenOverflows')] ?? NaN);
}

/** Resolves once something accepts TCP connections on host:port (polled every 10 ms), with the time it took. */
export async function waitListening(host: string, port: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
}

/** The simulated-agent processes, and a way to wait for one message from each. */
export class SimProcesses {
  readonly children: ChildProcess[];
  private readonly inbox: FromSim[][];
  failure = '';

  constructor(configs: SimConfig[]) {
    this.children = configs.map((c) => fork(join(ROOT, 'bench', 'sim-agents.ts'), [JSON.stringify(c)], { execArgv: ['--import', 'tsx', ...(process.env.SIM_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SIM_CPU_PROF}`] : [])], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.inbox = this.children.map(() => []);
    this.children.forEach((child, i) => {
      child.on('message', (m: FromSim) => {
        // partners' reachability goes to the other processes, not to the bench
        if (m.type === 'reach') {
          for (const other of this.children) if (other !== child && other.connected) other.send(m);
        } else {
          this.inbox[i]!.push(m);
        }
      });
      child.on('exit', (code) => {
        if (code !== 0) this.failure = `a simulated-agent process exited with code ${code}`;
      });
    });
  }

  /** CPU of all the simulated-agent processes, % of one core since `cpuMarks()`. */
  cpuMarks(): ReturnType<typeof cpuMark>[] {
    return this.children.map((c) => cpuMark(c.pid!));
  }

  send(message: ToSim): void {
    for (const c of this.children) c.send(message);
  }

  /** One message of `type` from every process (in process order), or a timeout. */
  async all<T extends FromSim['type']>(type: T, timeoutMs: number): Promise<Extract<FromSim, { type: T }>[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw new Error(this.failure);
      const found = this.inbox.map((box) => box.find((m) => m.type === type));
      if (found.every(Boolean)) {
        this.inbox.forEach((box, i) => box.splice(box.indexOf(found[i]!), 1));
        return found as Extract<FromSim, { type: T }>[];
      }
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for "${type}" from the simulated agents`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** What etcd has done so far: its revision (one per write that changed keys), and counters from its members' /metrics. */
export interface EtcdSample {
  /** performance.now() when taken. */
  at: number;
  revision: number;
  /** Txn calls answered, all members together (the coordinators' writes and campaigns: the probe only reads). */
  txns: number;
  /** Range calls answered, all members together (the followers watch the leader key by reading it). */
  ranges: number;
  /** Raft proposals committed (the etcd leader's count: every write, lease grants and revocations too). */
  proposals: number;
}

/**
 * The benchmark's own etcd client (the harness's client certificate): the revision, the leader key's address, and
 * the members' Prometheus counters (/metrics on their client port, mutual TLS).
 */
export class EtcdProbe {
  private readonly client: Etcd3;
  private readonly leaderKey: Buffer;
  private readonly tls: { ca: Buffer; cert: Buffer; key: Buffer };

  constructor(private readonly etcd: EtcdTestCluster, prefix = '/slotctl') {
    const c = etcd.clientCredentials();
    this.client = new Etcd3({ hosts: etcd.endpoints, credentials: c, dialTimeout: 2000 });
    this.tls = { ca: c.rootCertificate, cert: c.certChain, key: c.privateKey };
    this.leaderKey = Buffer.from(`${prefix.replace(/\/+$/, '')}/leader`);
  }

  /** The cluster's revision now (a linearizable read of the leader key). */
  async revision(): Promise<number> {
    const res = await this.client.kv.range({ key: this.leaderKey }, { deadline: Date.now() + 2000 });
    return Number(res.header.revision);
  }

  /** The address in PREFIX/leader (the leader coordinator's --advertise), or undefined while there is none. */
  async leaderAddress(): Promise<string | undefined> {
    const res = await this.client.kv.range({ key: this.leaderKey }, { deadline: Date.now() + 2000 });
    const kv = res.kvs[0];
    return kv ? (JSON.parse(kv.value.toString()) as { address: string }).address : undefined;
  }

  /** The PIDs of the members that run. */
  pids(): number[] {
    return this.etcd.names.map((n) => this.etcd.member(n)).filter((m) => m.running && m.pid !== undefined).map((m) => m.pid!);
  }

  async sample(): Promise<EtcdSample> {
    const revision = await this.revision();
    const members = this.etcd.names.map((n) => this.etcd.member(n)).filter((m) => m.running);
    const metrics = await Promise.all(members.map((m) => this.metrics(m.clientUrl)));
    const sum = (f: (m: Map<string, number>) => number) => metrics.reduce((n, m) => n + f(m), 0);
    return {
      at: performance.now(),
      revision,
      txns: sum((m) => m.get('Txn') ?? 0),
      ranges: sum((m) => m.get('Range') ?? 0),
      proposals: Math.max(0, ...metrics.map((m) => m.get('proposals') ?? 0)),
    };
  }

  close(): void {
    this.client.close();
  }

  /** One member's counters: gRPC calls handled by method, and proposals committed. */
  private async metrics(url: string): Promise<Map<string, number>> {
    const text = await new Promise<string>((resolve, reject) => {
      // no SNI (servername ''): the member is dialled at its IP, which its certificate names (checked as usual)
      const req = request(`${url}/metrics`, { ...this.tls, servername: '', timeout: 3000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer from ${url}/metrics within 3 s`)));
      req.on('error', reject);
      req.end();
    });
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const [, name, labels = '', value] = m;
      if (name === 'etcd_server_proposals_committed_total') out.set('proposals', Number(value));
      else if (name === 'grpc_server_handled_total') {
        const method = /grpc_method="([^"]+)"/.exec(labels)?.[1];
        if (method) out.set(method, (out.get(method) ?? 0) + Number(value));
      }
    }
    return out;
  }
}

/** Per second between two samples: revisions (etcd writes), Txn and Range calls, raft proposals. */
export function etcdRates(from: EtcdSample, to: EtcdSample): { revisionsPerSecond: number; txnsPerSecond: number; rangesPerSecond: number; proposalsPerSecond: number } {
  const s = (to.at - from.at) / 1000;
  return {
    revisionsPerSecond: round((to.revision - from.revision) / s),
    txnsPerSecond: round((to.txns - from.txns) / s),
    rangesPerSecond: round((to.ranges - from.ranges) / s),
    proposalsPerSecond: round((to.proposals - from.proposals) / s),
  };
}
