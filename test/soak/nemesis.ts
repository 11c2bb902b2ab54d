// The nemesis: carries out a schedule's steps (schedule.ts) on a namespace cluster, each start and end written to the
// history with its time, so a violation's excerpt shows what the cluster went through. Faults take effect before the
// call returns; operator actions run beside the timeline (a drain takes a while) and their answers are kept for the
// report: a refusal where one was certain must have happened, and an acceptance where a refusal was certain is a
// finding. A machine coming back from a down fault is recovered (`slotctl machine recover`) when a failover left
// at-risk records for it, as an operator would.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../tools/local-cluster.js';
import type { NetnsCluster } from '../cluster/netns.js';
import type { MachineClocks } from './clock.js';
import type { HistoryWriter } from './history.js';
import { END_ACTION, START_ACTION, type NemesisAction, type Step } from './schedule.js';

export interface OperatorResult {
  step: number;
  kind: string;
  target: string;
  expect: 'accept' | 'refuse';
  got: 'accept' | 'refuse';
  detail: string;
}

export interface SlotPlace {
  slot: string;
  store: string;
  machine: string;
}

export class NemesisError extends Error {
  override readonly name = 'NemesisError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Nemesis {
  readonly operator: OperatorResult[] = [];
  /** Things the nemesis could not do as scheduled (late, or an action that failed): reported, not hidden. */
  readonly problems: string[] = [];
  private readonly pending = new Set<Promise<void>>();
  private readonly fills = new Map<number, string>();
  /** Machines whose recovery runs: one at a time per machine (a crash after an isolation must not start a second). */
  private readonly recovering = new Set<string>();

  constructor(
    private readonly cluster: NetnsCluster,
    private readonly dir: string,
    private readonly history: HistoryWriter,
    private readonly slots: readonly SlotPlace[],
    private readonly log: (line: string) => void,
    /** The machines' clocks; undefined: no clock steps in this run. */
    private readonly clocks?: MachineClocks,
  ) {}

  private note(step: Step, phase: 'start' | 'end', detail?: string): void {
    this.history.nemesis({ kind: step.kind, target: step.target, phase, step: step.id, ...(detail ? { detail } : {}) });
    this.log(`nemesis #${step.id} ${phase} ${step.kind} ${step.target}: ${phase === 'start' ? START_ACTION[step.kind] : END_ACTION[step.kind]}${detail ? ` (${detail})` : ''}`);
  }

  /** Runs beside the timeline; awaited by settle(). */
  private background(what: string, work: () => Promise<void>): void {
    const p = work().catch((err: Error) => void this.problems.push(`${what}: ${err.message}`));
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  async run(action: NemesisAction): Promise<void> {
    const { step, phase } = action;
    try {
      if (phase === 'start') await this.start(step);
      else await this.end(step);
    } catch (err) {
      this.problems.push(`#${step.id} ${step.kind} ${step.target} ${phase}: ${(err as Error).message}`);
      this.log(`nemesis #${step.id} ${phase} failed: ${(err as Error).message}`);
    }
  }

  private async start(step: Step): Promise<void> {
    const c = this.cluster;
    const m = step.machines[0]!;
    switch (step.kind) {
      case 'crash':
        await c.crash(m);
        break;
      case 'isolate':
        await c.isolate(m);
        break;
      case 'cut':
        await c.cut(step.machines[0]!, step.machines[1]!);
        break;
      case 'cut-coordinator':
        await c.cut(m, 'co');
        break;
      case 'pause-short':
      case 'pause-long':
        c.pauseAgent(m);
        break;
      case 'kill-agent':
        await c.killAgent(m);
        break;
      case 'kill-fence':
        this.killFence(m);
        break;
      case 'kill-coordinator':
        await c.coordinatorProcess?.crash();
        break;
      case 'clock-step':
        this.clocks!.set(m, step.clockStepMs!);
        break;
      case 'fill-partition':
        this.note(step, 'start', this.fill(step));
        return;
      default:
        this.note(step, 'start');
        this.operatorAction(step);
        return;
    }
    this.note(step, 'start');
  }

  private async end(step: Step): Promise<void> {
    const c = this.cluster;
    const m = step.machines[0]!;
    switch (step.kind) {
      case 'crash':
        await c.powerOn(m);
        this.background(`recovery of ${m}`, () => this.recover(m));
        break;
      case 'isolate':
      case 'cut':
      case 'cut-coordinator':
        await c.heal();
        // a machine cut from the coordinator alone keeps its lease through a partner: nothing to recover, unless the
        // relay failed it (the coordinator restarted meanwhile, say): then it is recovered as after an isolation
        if (step.kind !== 'cut') this.background(`recovery of ${m}`, () => this.recover(m));
        break;
      case 'pause-short':
      case 'pause-long':
        c.resumeAgent(m);
        if (step.kind === 'pause-long') this.background(`recovery of ${m}`, () => this.recover(m));
        break;
      case 'kill-agent':
        c.startAgent(m);
        this.background(`recovery of ${m}`, () => this.recover(m));
        break;
      case 'kill-fence':
        break; // the agent starts it again within seconds; settle() checks that it runs
      case 'kill-coordinator':
        await c.startCoordinator();
        break;
      case 'clock-step':
        this.clocks!.set(m, 0);
        break;
      case 'fill-partition': {
        const file = this.fills.get(step.id);
        if (file) rmSync(file, { force: true });
        this.fills.delete(step.id);
        break;
      }
      case 'drain':
        await this.slotctlOk(['machine', 'undrain', m]);
        break;
      default:
        break; // other operator actions end by themselves
    }
    this.note(step, 'end');
  }

  /** SIGKILL of the machine's fence process (its PID file checked against its command line). */
  private killFence(machine: string): void {
    const stateDir = this.cluster.stateDir(machine);
    const pid = Number(readFileSync(join(stateDir, 'slot-fence.pid'), 'utf8').trim());
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(stateDir)) throw new NemesisError(`pid ${pid} in ${machine}'s slot-fence.pid is not its fence`);
    process.kill(pid, 'SIGKILL');
  }

  /** Takes every free byte of a slot's partition (a file the size of the free space); returns what it did. */
  private fill(step: Step): string {
    const mine = this.slots.filter((s) => s.machine === step.machines[0]).sort((a, b) => a.slot.localeCompare(b.slot));
    const slot = mine[step.slotIndex! % mine.length]!;
    const { file, written, free } = this.cluster.fillPartition(slot.machine, slot.store, step.partition!, 'soak-fill');
    this.fills.set(step.id, file);
    return `${slot.slot} ${step.partition} full: ${Math.round(written / 1048576)} MiB of ${Math.round(free / 1048576)} MiB free taken`;
  }

  private async slotctl(args: string[]) {
    return this.cluster.slotctl(args);
  }

  private async slotctlOk(args: string[]): Promise<string> {
    const r = await this.slotctl(args);
    if (r.exitCode !== 0) throw new NemesisError(`slotctl ${args.join(' ')} exited ${r.exitCode}: ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
    return r.stdout;
  }

  private operatorAction(step: Step): void {
    const expect = step.expect ?? 'accept';
    const record = (ok: boolean, detail: string) => {
      const got = ok ? 'accept' : 'refuse';
      this.operator.push({ step: step.id, kind: step.kind, target: step.target, expect, got, detail: detail.trim().slice(0, 400) });
      this.history.nemesis({ kind: step.kind, target: step.target, phase: 'end', step: step.id, detail: `${ok ? 'accepted' : 'refused'}: ${detail.trim().split('\n')[0]?.slice(0, 200) ?? ''}` });
    };
    const attempt = async (args: string[]) => {
      const r = await this.slotctl(args);
      record(r.exitCode === 0, r.exitCode === 0 ? r.stdout : `exit ${r.exitCode}: ${r.stderr || r.stdout}`);
    };
    const store = () => this.slots.filter((s) => s.store === step.target);
    this.background(`#${step.id} ${step.kind}`, async () => {
      switch (step.kind) {
        case 'switchover':
          return attempt(['store', 'switchover', step.target, '--wait']);
        case 'drain':
          return attempt(['machine', 'drain', step.machines[0]!]);
        case 'rebalance':
          return attempt(['plan', 'rebalance', '--apply', '--timeout', '180s']);
        case 'cleanup':
          return attempt(['cleanup', 'run', '--machine', step.machines[0]!, '--wait', '--timeout', '120s']);
        case 'replay': {
          const slots = await this.cluster.slotctlJson<{ name: string; store: string; desiredRole: string }[]>(['slot', 'list']);
          const of = slots.filter((s) => store().some((x) => x.slot === s.name));
          if (expect === 'refuse') {
            // a running master: replay asks for a stopped slot
            return attempt(['slot', 'replay', of.find((s) => s.desiredRole === 'master')?.name ?? of[0]!.name, '--wait']);
          }
          const replica = of.find((s) => s.desiredRole !== 'master') ?? of[0]!;
          await this.slotctlOk(['slot', 'stop', replica.name]);
          try {
            return await attempt(['slot', 'replay', replica.name, '--wait']);
          } finally {
            await this.slotctlOk(['slot', 'start', replica.name]);
          }
        }
        default:
          throw new NemesisError(`no operator action for ${step.kind}`);
      }
    });
  }

  /** The machine's agent is back: any at-risk record a failover left for it is recovered, as an operator would. */
  private async recover(machine: string): Promise<void> {
    if (this.recovering.has(machine)) return;
    this.recovering.add(machine);
    try {
      await this.recoverOnce(machine);
    } finally {
      this.recovering.delete(machine);
    }
  }

  private async recoverOnce(machine: string): Promise<void> {
    await waitFor(`${machine}'s agent to connect`, async () => {
      const m = (await this.cluster.slotctlJson<{ name: string; connected: boolean }[]>(['machine', 'list'])).find((x) => x.name === machine);
      return m?.connected ? true : undefined;
    }, 120_000, 500).catch((err: Error) => {
      // what the agent was doing says more than the timeout
      throw new NemesisError(`${err.message}; ${this.cluster.agentStatus(machine)}`);
    });
    let unreachable = 0;
    for (let attempt = 1; ; attempt++) {
      // the coordinator may be down (a kill-coordinator step): not the recovery's failure, ask again
      const records = await this.cluster.slotctlJson<{ machine: string; state: string }[]>(['store', 'at-risk']).catch(() => undefined);
      if (!records) {
        if (++unreachable > 60) throw new NemesisError(`the coordinator did not answer for 2 minutes while ${machine} waited for its recovery`);
        attempt--;
        await sleep(2000);
        continue;
      }
      const open = records.filter((r) => r.machine === machine);
      if (!open.length) return;
      const r = await this.slotctl(['machine', 'recover', machine]);
      const said = (r.exitCode === 0 ? '' : (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ').slice(0, 300));
      this.history.nemesis({ kind: 'recover', target: machine, phase: 'end', detail: `machine recover exit ${r.exitCode}${said ? `: ${said}` : ''}` });
      if (r.exitCode === 0) continue; // read the records again: all closed?
      if (attempt >= 10) throw new NemesisError(`machine recover ${machine} failed ${attempt} times: ${(r.stderr || r.stdout).trim().slice(0, 400)}`);
      await sleep(3000);
    }
  }

  /** Waits for everything started beside the timeline. */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  /** Heals whatever a stopped run left (every fault of the schedule has an end, but a run can be interrupted). */
  async healAll(machines: readonly string[]): Promise<void> {
    for (const file of this.fills.values()) rmSync(file, { force: true });
    this.clocks?.resetAll(machines);
    await this.cluster.heal().catch(() => undefined);
  }
}

