// A soak run: a 5 × 8 namespace cluster with real Cyrus, the clients recording their history, the nemesis carrying
// out a seeded schedule, a split-brain watch throughout; then every fault healed, every machine recovered, both sides
// of every store read, and the checker's verdict over the history and that final state. `npm run soak` (main.ts) and
// the 3-minute run of `npm test` (test/soak.test.ts) both call runSoak.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT, waitFor } from '../../tools/local-cluster.js';
import type { StoreJson } from '../cluster/checks.js';
import { MasterWatch, type MasterWatchResult } from '../cluster/master-watch.js';
import { NetnsCluster } from '../cluster/netns.js';
import { mountsUnder, NETNS_PREFIX } from '../cluster/netns-cleanup.js';
import { MachineClocks, SEMAPHORE_UNITS } from './clock.js';
import { processCommandLines } from '../support/fixtures.js';
import type { PairResult } from '../support/mail-compare.js';
import { type AtRiskRecord, atRiskFrom, type AtRiskUnexplained, type CheckReport, check, type FinalState, passed, type ReportedBacklog, renderReport } from './checker.js';
import { HistoryWriter, monotonicMs, readHistory } from './history.js';
import { Nemesis, type OperatorResult, type SlotPlace } from './nemesis.js';
import { FAULT_KINDS, OPERATOR_KINDS, generateSchedule, nemesisActions, renderSchedule, type Schedule, type ScheduleOptions, type StoreLayout, summarizeSchedule, type ScheduleSummary } from './schedule.js';

export interface SoakOptions {
  minutes: number;
  seed: number;
  dir: string;
  log?: (line: string) => void;
  /** Deliveries and IMAP operations per second, over all stores. */
  lmtpRate?: number;
  imapRate?: number;
  schedule?: ScheduleOptions;
  /** Cluster id (namespace names): one soak cluster at a time per id. */
  id?: string;
  /** Step machines' wall clocks (agents, fences and Cyrus under libfaketime, clock.ts); default on. */
  clock?: boolean;
}

export interface SoakResult {
  seed: number;
  minutes: number;
  passed: boolean;
  schedule: ScheduleSummary;
  report: CheckReport;
  operator: OperatorResult[];
  /** Operator actions the coordinator accepted where a refusal was certain. */
  wronglyAccepted: OperatorResult[];
  /** What the nemesis could not do as scheduled, or the settling that failed. */
  problems: string[];
  /** Largest delay of a nemesis action behind its schedule, ms. */
  lateMs: number;
  watch: { watchedMs: number; changes: number; lost: number; inconsistent: string[] };
  leftovers: string[];
  /** The at-risk records the run's failovers opened, by their final state (recovered, nothing-lost; open ones fail it). */
  atRiskByState: Record<string, number>;
  /** Per machine, libfaketime semaphore units kept by processes killed while holding them (see clock.ts). */
  faketimeLost: Record<string, number>;
  /** The report as lines (counts, violations with excerpts, the schedule when it failed). */
  lines: string[];
  dir: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const id = o.id ?? 'sk';
  mkdirSync(o.dir, { recursive: true });
  const clocks = o.clock === false ? undefined : new MachineClocks(o.dir);
  const cluster = new NetnsCluster({
    dir: o.dir, id, storePrefix: 's', machines: 5, slotsPerMachine: 8, log,
    agentArgs: ['--stall-after', '3s'], ...(clocks ? { agentEnv: (m: string) => clocks.env(m) } : {}), partitionFsMb: 48,
  });
  const problems: string[] = [];
  const clientsOut = join(o.dir, 'history-clients.jsonl');
  const nemesisOut = join(o.dir, 'history-nemesis.jsonl');
  let watchResult: MasterWatchResult | undefined;
  let schedule: Schedule | undefined;
  let nemesis: Nemesis | undefined;
  let lateMs = 0;
  let final: FinalState = {};
  let atRisk: AtRiskUnexplained[] = [];
  let records: AtRiskRecord[] = [];
  // the coordinator stamps records on the wall clock (its own, never stepped); the history runs on CLOCK_MONOTONIC
  const wallToMono = (() => {
    const wall = Date.now();
    const mono = monotonicMs();
    return (iso: string) => mono + (Date.parse(iso) - wall);
  })();
  const atRiskByState: Record<string, number> = {};
  try {
    await cluster.start();
    const stores = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
    const layout: StoreLayout[] = stores.map((s) => ({ store: s.name, machines: [s.master.machine, s.replica.machine] }));
    const slots: SlotPlace[] = stores.flatMap((s) => [s.master, s.replica].map((slot) => ({ slot: slot.name, store: s.name, machine: slot.machine })));
    const kinds = o.clock === false ? [...FAULT_KINDS, ...OPERATOR_KINDS].filter((k) => k !== 'clock-step') : undefined;
    schedule = generateSchedule(o.seed, o.minutes, cluster.machines, { stores: layout, slotsPerMachine: cluster.slotsPerMachine, ...(kinds ? { kinds } : {}), ...o.schedule });
    const rendered = renderSchedule(schedule);
    writeFileSync(join(o.dir, 'schedule.txt'), `${rendered.join('\n')}\n`);
    log(rendered.slice(0, 3).join('\n'));

    const targets = stores.map((s) => ({ store: s.name, host: s.serviceIp, users: [`${s.name}a`, `${s.name}b`] }));
    const clientArgs = (name: string) => ['/usr/bin/env', 'node', '--import', 'tsx', join(ROOT, 'test', 'soak', 'clients.ts'), '--targets', JSON.stringify(targets), '--out', clientsOut, '--name', name, '--seed', String(o.seed), '--lmtp-rate', String(o.lmtpRate ?? 6), '--imap-rate', String(o.imapRate ?? 4)];
    const setup = await cluster.exec('cl', [...clientArgs('setup').slice(1), '--setup']);
    if (setup.exitCode !== 0) throw new Error(`the clients' setup failed: ${setup.stderr || setup.stdout}`);

    const watch = new MasterWatch(new Map(cluster.machines.map((m) => [m, cluster.ns(m)])), new Set(stores.map((s) => s.serviceIp)));
    await watch.start();
    try {
      const history = new HistoryWriter(nemesisOut, 'nemesis');
      nemesis = new Nemesis(cluster, o.dir, history, slots, log, clocks);
      const clients = cluster.daemon('soak-clients', 'cl', clientArgs('c1'));
      const t0 = monotonicMs();
      history.nemesis({ kind: 'run', target: 'cluster', phase: 'start', detail: `seed ${o.seed}, ${o.minutes} min` });
      try {
        for (const action of nemesisActions(schedule)) {
          const wait = t0 + action.at - monotonicMs();
          if (wait > 0) await sleep(wait);
          lateMs = Math.max(lateMs, -wait);
          await nemesis.run(action);
        }
        const rest = t0 + o.minutes * 60_000 - monotonicMs();
        if (rest > 0) await sleep(rest);
      } finally {
        await clients.stop(90_000); // SIGTERM: the running operations end (each has a deadline), then it exits
        await nemesis.settle();
        await nemesis.healAll(cluster.machines);
        history.nemesis({ kind: 'run', target: 'cluster', phase: 'end' });
        history.close();
      }
      log(`nemesis done (${nemesis.problems.length} problem(s)); settling`);
      problems.push(...nemesis.problems);
      await settleCluster(cluster, stores, problems, log);
    } finally {
      watchResult = await watch.stop();
    }
    final = await finalState(cluster, stores, problems);
    const all = await cluster.slotctlJson<({ id: number; store: string; slot: string; machine: string; state: string; createdAt: string; mailboxes: string[] } & ReportedBacklog)[]>(['store', 'at-risk', '--all']);
    for (const r of all) atRiskByState[r.state] = (atRiskByState[r.state] ?? 0) + 1;
    records = all.map((r) => ({ id: r.id, store: r.store, at: wallToMono(r.createdAt), from: atRiskFrom(r, wallToMono), mailboxes: r.mailboxes, state: r.state }));
    atRisk = all.filter((r) => r.state !== 'recovered' && r.state !== 'nothing-lost').map((r) => ({ id: r.id, store: r.store, slot: r.slot, machine: r.machine, state: r.state, why: `still ${r.state} after the run settled` }));
  } catch (err) {
    problems.push(`run: ${(err as Error).stack ?? (err as Error).message}`);
  } finally {
    await cluster.destroy().catch((err: Error) => problems.push(`destroy: ${err.message}`));
  }
  const leftovers = await leftoversOf(o.dir, id);
  leftovers.push(...(clocks?.strays() ?? []).map((f) => `libfaketime object ${f}`));
  // every machine process has ended: what its semaphore lacks was kept by processes killed inside libfaketime's lock
  const faketimeLost = clocks?.lostUnits() ?? {};
  clocks?.remove();
  const history = readHistory([clientsOut, nemesisOut].filter((f) => existsSync(f)));
  const report = check(history, final, { atRisk: records });
  report.twoMasterMoments = watchResult?.dual ?? [];
  report.atRiskUnexplained = atRisk;
  const operator = nemesis?.operator ?? [];
  const wronglyAccepted = operator.filter((r) => r.expect === 'refuse' && r.got === 'accept');
  const watch = { watchedMs: watchResult?.watchedMs ?? 0, changes: watchResult?.changes ?? 0, lost: watchResult?.lost ?? 0, inconsistent: watchResult?.inconsistent ?? [] };
  if (watch.lost) problems.push(`the split-brain watch lost ${watch.lost} event(s): its record is not whole`);
  if (watch.inconsistent.length) problems.push(`the split-brain watch could not place: ${watch.inconsistent.join('; ')}`);
  if (!history.operations.length) problems.push('no operation was recorded');
  const ok = passed(report) && !wronglyAccepted.length && !problems.length && !leftovers.length;
  const origin = history.nemesis.find((e) => e.kind === 'run')?.at ?? 0;
  const lines = [
    `soak seed ${o.seed}, ${o.minutes} min: ${ok ? 'PASSED' : 'FAILED'} (replay: npm run soak -- --minutes ${o.minutes} --seed ${o.seed})`,
    ...renderReport(report, origin),
    `operator actions: ${operator.length} (${operator.filter((r) => r.got === 'accept').length} accepted, ${operator.filter((r) => r.got === 'refuse').length} refused; ${wronglyAccepted.length} accepted where a refusal was certain)`,
    ...operator.filter((r) => r.expect !== r.got).map((r) => `  #${r.step} ${r.kind} ${r.target}: expected ${r.expect}, got ${r.got}: ${r.detail.split('\n')[0]}`),
    `split-brain watch: ${Math.round(watch.watchedMs / 1000)} s, ${watch.changes} listener change(s), ${watch.lost} lost, ${report.twoMasterMoments.length} moment(s) with two masters`,
    `at-risk records: ${Object.entries(atRiskByState).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `nemesis at most ${Math.round(lateMs)} ms behind its schedule`,
    ...(clocks ? [`libfaketime: ${Object.entries(faketimeLost).map(([m, n]) => `${m} ${n}`).join(', ') || 'no machine'} unit(s) kept by processes killed inside its lock (of ${SEMAPHORE_UNITS} each; harmless)`] : []),
    ...problems.map((p) => `problem: ${p}`),
    ...leftovers.map((l) => `left behind: ${l}`),
    ...(ok || !schedule ? [] : ['schedule:', ...renderSchedule(schedule).map((l) => `  ${l}`)]),
  ];
  const result: SoakResult = { seed: o.seed, minutes: o.minutes, passed: ok, schedule: schedule ? summarizeSchedule(schedule) : { faults: {}, operator: {}, several: 0, faultMs: 0 }, report, operator, wronglyAccepted, problems, lateMs, watch, leftovers, atRiskByState, faketimeLost, lines, dir: o.dir };
  writeFileSync(join(o.dir, 'report.json'), `${JSON.stringify({ ...result, report: { ...report, violations: report.violations.slice(0, 50) } }, null, 1)}\n`);
  return result;
}


/**
 * After the last fault: every agent connected and its machine up, every open at-risk record recovered, every store
 * one master and one replica serving on the epoch the database names, every fence process running.
 */
async function settleCluster(cluster: NetnsCluster, stores: StoreJson[], problems: string[], log: (line: string) => void): Promise<void> {
  try {
    await waitFor('every agent to be connected and its machine up', async () => {
      const machines = await cluster.slotctlJson<{ name: string; connected: boolean; state: string }[]>(['machine', 'list']);
      return machines.length === cluster.machines.length && machines.every((m) => m.connected && (m.state === 'up' || m.state === 'returning')) ? true : undefined;
    }, 180_000, 500);
    for (let round = 0; round < 5; round++) {
      const open = await cluster.slotctlJson<{ machine: string }[]>(['store', 'at-risk']);
      if (!open.length) break;
      for (const m of new Set(open.map((r) => r.machine))) {
        const r = await cluster.slotctl(['machine', 'recover', m]);
        log(`settle: machine recover ${m} exit ${r.exitCode}`);
      }
    }
    let notYet: string[] = [];
    try {
      await waitFor('every store to have one master and one replica serving', async () => {
        const now = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
        notYet = now.filter((s) => stores.some((x) => x.name === s.name)).filter((s) => {
          const ok = s.master.state === 'SERVING' && s.master.role === 'MASTER' && s.replica.state === 'SERVING' && s.replica.role === 'REPLICA';
          return !(ok && s.master.epochApplied === s.epoch && s.replica.epochApplied === s.epoch);
        }).map((s) => `${s.name} (epoch ${s.epoch}: master ${s.master.name} ${s.master.state} as ${s.master.role || 'nothing'} at ${s.master.epochApplied}, replica ${s.replica.name} ${s.replica.state} as ${s.replica.role || 'nothing'} at ${s.replica.epochApplied})`);
        return notYet.length ? undefined : true;
      }, 240_000, 1000);
    } catch {
      throw new Error(`not settled after 240 s: ${notYet.join('; ')}`);
    }
    for (const m of cluster.machines) {
      const pidFile = join(cluster.stateDir(m), 'slot-fence.pid');
      await waitFor(`${m}'s fence to run`, () => {
        try {
          return readFileSync(`/proc/${Number(readFileSync(pidFile, 'utf8').trim())}/cmdline`, 'utf8').includes(cluster.stateDir(m)) ? true : undefined;
        } catch {
          return undefined;
        }
      }, 30_000, 500);
    }
  } catch (err) {
    problems.push(`settling: ${(err as Error).message}`);
  }
}

/**
 * Both sides of every store, read until they agree (replication is asynchronous) or 3 minutes pass. Every user either
 * side holds is read; one missing on the master is the checker's to find (its history says it had mail).
 */
async function finalState(cluster: NetnsCluster, stores: StoreJson[], problems: string[]): Promise<FinalState> {
  const now = await cluster.slotctlJson<StoreJson[]>(['store', 'list']);
  const pairs = now.filter((s) => stores.some((x) => x.name === s.name)).map((s) => ({ name: s.name, master: s.serviceIp, replica: s.replica.ip }));
  const run = await cluster.exec('cl', ['node', '--import', 'tsx', join(ROOT, 'test', 'support', 'mail-compare-cli.ts'), JSON.stringify({ pairs, timeoutMs: 180_000 })]);
  if (run.exitCode !== 0) {
    problems.push(`reading the final state failed: ${run.stderr.slice(0, 400)}`);
    return {};
  }
  const out: FinalState = {};
  for (const r of JSON.parse(run.stdout) as PairResult[]) {
    out[r.name] = { master: r.master, replica: r.replica };
    for (const d of r.diffs.filter((x) => x.startsWith('reading failed'))) problems.push(`${r.name}: ${d}`);
  }
  return out;
}

/** Namespaces of the run's prefix, processes naming its directory, mounts under it. */
async function leftoversOf(dir: string, id: string): Promise<string[]> {
  const out: string[] = [];
  const ns = (await execa('ip', ['netns', 'list'], { reject: false })).stdout.split('\n').filter((l) => l.startsWith(`${NETNS_PREFIX}${id}-`));
  out.push(...ns.map((n) => `namespace ${n}`));
  out.push(...processCommandLines().filter((l) => l.includes(dir)).map((l) => `process ${l}`));
  out.push(...mountsUnder(dir).map((m) => `mount ${m}`));
  return out;
}
