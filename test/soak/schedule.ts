// The nemesis schedule of a soak run: from a seed, the faults and operator actions of the whole run, each with its
// time, target and length, drawn so that the run stays meaningful and its promise checkable — no more machines down
// at once than the cluster fails over by itself, no two faults on one target unless meant, operator actions only
// where they are expected to be accepted or refused (and which), and every fault healed with time left to settle.
// Pure: the runner executes it (nemesisActions), a failure report prints it (renderSchedule), `--seed S` replays it.

/** Machine faults, a coordinator fault and operator actions. */
export const FAULT_KINDS = ['crash', 'isolate', 'cut', 'pause-short', 'pause-long', 'kill-agent', 'kill-fence', 'kill-coordinator', 'clock-step', 'fill-partition', 'cut-coordinator'] as const;
export const OPERATOR_KINDS = ['switchover', 'drain', 'rebalance', 'cleanup', 'replay'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type OperatorKind = (typeof OPERATOR_KINDS)[number];
export type StepKind = FaultKind | OperatorKind;

/** Faults that leave a machine without its agent or its network: the ones the failover limit counts. */
export const DOWN_KINDS: readonly StepKind[] = ['crash', 'isolate', 'pause-short', 'pause-long', 'kill-agent'];
/** Faults the harness heals with one heal() for all: they must not overlap while heal() is global. */
export const NETWORK_KINDS: readonly StepKind[] = ['isolate', 'cut', 'cut-coordinator'];
/** Down faults after which the coordinator no longer sees the machine's agent: a switchover touching it is refused. */
const GONE_KINDS: readonly StepKind[] = ['crash', 'isolate', 'kill-agent'];

export interface Step {
  /** Position in the schedule (steps are sorted by `at`), for reports. */
  id: number;
  /** ms after the run's start. */
  at: number;
  kind: StepKind;
  /** A machine (m3), two machines (m1~m4), `coordinator`, a store, or `cluster`. */
  target: string;
  /** Machines the step touches (empty for the coordinator and cluster-wide actions). */
  machines: string[];
  /** ms until the fault is healed (or the drained machine undrained); for other operator actions, how long to wait for them. */
  duration: number;
  /** Faults: part of several machines down at once (only where the failover limit allows it). */
  several?: boolean;
  /** Operator actions: accepted, or refused by the coordinator (the runner checks which it was). */
  expect?: 'accept' | 'refuse';
  /** Why a refusal is expected, or why this fault shares its target with another (ids). */
  why?: string;
  /** Kind-specific details. */
  partition?: 'data' | 'meta';
  /** fill-partition: which of the machine's slots, by index (the runner maps it to a slot name). */
  slotIndex?: number;
  /** clock-step: the wall clock is stepped by this many ms at the start (negative: back) and by the opposite at the end. */
  clockStepMs?: number;
}

export interface StoreLayout {
  store: string;
  /** The machines of its two slots (which one is master changes during the run; the slots stay where they are). */
  machines: [string, string];
}

export interface ScheduleOptions {
  /** The coordinator's --lease (5 s by default): pauses are shorter or longer than it. */
  leaseMs?: number;
  /** The coordinator's --max-auto-failover (1 by default): machines down at once never exceed it. */
  maxAutoFailover?: number;
  /** Allow several machines down at once (up to maxAutoFailover). */
  several?: boolean;
  stores?: readonly StoreLayout[];
  slotsPerMachine?: number;
  /** Nothing new starts in the first warmupMs; every fault has ended settleMs before the run's end. */
  warmupMs?: number;
  settleMs?: number;
  /** After a down fault ends the machine still counts as down this long: agent back, `machine recover`, replicas caught up. */
  recoverMs?: number;
  /** Mean ms between two draws of the nemesis. */
  meanGapMs?: number;
  /** How long an operator action may take; faults keep off its machines meanwhile. */
  operatorWindowMs?: number;
  /** A restarted coordinator waits for agents to reconnect: no operator action this long after it is back. */
  coordinatorSettleMs?: number;
  /** The kinds to draw from (default all), and their weights. */
  kinds?: readonly StepKind[];
  weights?: Partial<Record<StepKind, number>>;
  /** The harness's heal() ends every isolation and cut at once, so network faults never overlap (default true). */
  globalHeal?: boolean;
}

export interface Schedule {
  seed: number;
  minutes: number;
  machines: string[];
  steps: Step[];
}

export class ScheduleInputError extends Error {
  override readonly name = 'ScheduleInputError';
}

/** mulberry32: a well-known 32-bit PRNG, a few lines, fast and good enough to draw a schedule (not for secrets). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  weighted<T extends string>(weights: readonly [T, number][]): T {
    const total = weights.reduce((n, [, w]) => n + w, 0);
    let x = this.next() * total;
    for (const [item, w] of weights) if ((x -= w) < 0) return item;
    return weights.at(-1)![0];
  }
}

const DEFAULT_WEIGHTS: Record<StepKind, number> = {
  crash: 3, isolate: 3, cut: 3, 'pause-short': 2, 'pause-long': 2, 'kill-agent': 2, 'kill-fence': 1, 'kill-coordinator': 1, 'clock-step': 1, 'fill-partition': 2,
  // drawn by a pass of its own (overlayCoordinatorCuts): a weight here would change every earlier seed's schedule
  'cut-coordinator': 0,
  switchover: 3, drain: 1, rebalance: 1, cleanup: 1, replay: 1,
};

/** A placed step as the rules see it: the span it occupies (down faults include their recovery). */
interface Span {
  step: Step;
  from: number;
  to: number;
}

const overlaps = (a: { from: number; to: number }, b: { from: number; to: number }) => a.from < b.to && b.from < a.to;
const isFault = (k: StepKind): k is FaultKind => (FAULT_KINDS as readonly string[]).includes(k);

type Settings = Required<Omit<ScheduleOptions, 'weights' | 'stores'>> & { stores: readonly StoreLayout[]; weights: Record<StepKind, number> };

function settingsOf(minutes: number, machines: readonly string[], options: ScheduleOptions): Settings {
  const runMs = minutes * 60_000;
  const leaseMs = options.leaseMs ?? 5000;
  const stores = options.stores ?? [];
  for (const s of stores) {
    for (const m of s.machines) if (!machines.includes(m)) throw new ScheduleInputError(`store ${s.store} has a slot on ${m}, which is not one of the machines (${machines.join(', ')})`);
  }
  // without stores there is nothing to switch over or replay
  const kinds = (options.kinds ?? [...FAULT_KINDS, ...OPERATOR_KINDS]).filter((k) => stores.length > 0 || (k !== 'switchover' && k !== 'replay'));
  for (const k of kinds) if (!(k in DEFAULT_WEIGHTS)) throw new ScheduleInputError(`unknown step kind ${k}`);
  return {
    leaseMs,
    maxAutoFailover: options.maxAutoFailover ?? 1,
    several: options.several ?? false,
    stores,
    slotsPerMachine: options.slotsPerMachine ?? 8,
    warmupMs: options.warmupMs ?? Math.min(10_000, runMs / 10),
    settleMs: options.settleMs ?? Math.min(60_000, runMs / 3),
    recoverMs: options.recoverMs ?? 15_000 + 2 * leaseMs,
    meanGapMs: options.meanGapMs ?? 8000,
    operatorWindowMs: options.operatorWindowMs ?? 30_000,
    coordinatorSettleMs: options.coordinatorSettleMs ?? 2 * leaseMs + 5000,
    kinds,
    weights: { ...DEFAULT_WEIGHTS, ...options.weights },
    globalHeal: options.globalHeal ?? true,
  };
}

/** Draws one candidate step at time `at` (its rules are checked afterwards, in `admissible`). */
function draw(rng: Rng, kind: StepKind, at: number, machines: readonly string[], s: Settings, placed: readonly Span[]): Step {
  const step: Step = { id: 0, at, kind, target: '', machines: [], duration: 0 };
  const machine = rng.pick(machines);
  const one = () => Object.assign(step, { target: machine, machines: [machine] });
  const sec = (lo: number, hi: number) => rng.int(lo * 1000, hi * 1000);
  switch (kind) {
    case 'crash':
      return Object.assign(one(), { duration: sec(3, 60) });
    case 'isolate':
      return Object.assign(one(), { duration: sec(2, 40) });
    case 'cut': {
      const other = rng.pick(machines.filter((m) => m !== machine));
      const pair = [machine, other].sort();
      return Object.assign(step, { target: pair.join('~'), machines: pair, duration: sec(2, 40) });
    }
    case 'pause-short': // well inside the lease: nothing may fail over
      return Object.assign(one(), { duration: rng.int(Math.round(s.leaseMs * 0.1), Math.round(s.leaseMs * 0.6)) });
    case 'pause-long': // past the lease: the masters fence and fail over, the agent wakes up to a newer epoch
      return Object.assign(one(), { duration: rng.int(Math.round(s.leaseMs * 1.5), s.leaseMs * 4) });
    case 'kill-agent':
    case 'kill-fence':
      return Object.assign(one(), { duration: sec(1, 10) });
    case 'kill-coordinator':
      return Object.assign(step, { target: 'coordinator', duration: rng.int(500, s.leaseMs * 3) });
    case 'cut-coordinator': // the machine's partners still reach both: its heartbeats go through one (Agent.Relay)
      return Object.assign(one(), { duration: sec(10, 60) });
    case 'clock-step':
      return Object.assign(one(), { duration: sec(5, 30), clockStepMs: (rng.float() < 0.5 ? -1 : 1) * sec(30, 600) });
    case 'fill-partition':
      return Object.assign(one(), { duration: sec(10, 60), partition: rng.pick(['data', 'meta'] as const), slotIndex: rng.int(0, s.slotsPerMachine - 1) });
    case 'switchover':
    case 'replay': {
      // a refusal is only expected where it is certain: a switchover touching a machine the coordinator no longer
      // sees, or a replay of a slot that is still running (replay asks for a stopped slot)
      const gone = placed.filter((p) => GONE_KINDS.includes(p.step.kind) && at >= p.step.at + 1.5 * s.leaseMs && at <= p.step.at + p.step.duration - 2000);
      const refuseOn = kind === 'switchover' ? s.stores.filter((st) => gone.some((g) => st.machines.includes(g.step.target))) : s.stores;
      const refuse = refuseOn.length > 0 && rng.float() < 0.3;
      const store = rng.pick(refuse ? refuseOn : s.stores);
      Object.assign(step, { target: store.store, machines: [...store.machines], duration: s.operatorWindowMs });
      if (!refuse) return Object.assign(step, { expect: 'accept' as const });
      const why = kind === 'replay' ? 'replay of a running slot (the runner asks without stopping it first)' : `a slot of ${store.store} is on ${store.machines.find((m) => gone.some((g) => g.step.target === m))}, which is down`;
      return Object.assign(step, { expect: 'refuse' as const, why });
    }
    case 'drain':
      return Object.assign(one(), { duration: sec(30, 120), expect: 'accept' as const });
    case 'cleanup':
      return Object.assign(one(), { duration: s.operatorWindowMs, expect: 'accept' as const });
    case 'rebalance':
      return Object.assign(step, { target: 'cluster', duration: s.operatorWindowMs, expect: 'accept' as const });
  }
}

/** The span a step occupies for the rules: a down fault until its machine has recovered; an operator action its window. */
function spanOf(step: Step, s: Settings): Span {
  // a pause within the lease fails nothing over, so there is nothing to recover from
  if (isFault(step.kind)) return { step, from: step.at, to: step.at + step.duration + (DOWN_KINDS.includes(step.kind) && step.kind !== 'pause-short' ? s.recoverMs : 0) };
  if (step.expect === 'refuse') return { step, from: step.at, to: step.at + 1 }; // refused at once: holds nothing
  return { step, from: step.at, to: step.at + step.duration + (step.kind === 'drain' ? s.operatorWindowMs : 0) };
}

/** Why a candidate breaks a rule (undefined: it may be placed). */
function admissible(step: Step, span: Span, s: Settings, placed: readonly Span[], endMs: number): string | undefined {
  const fault = isFault(step.kind);
  if (span.to > endMs - s.settleMs) return 'would not be healed and settled before the end';
  const live = placed.filter((p) => overlaps(p, span));
  const liveFaults = live.filter((p) => isFault(p.step.kind));
  const liveOps = live.filter((p) => !isFault(p.step.kind) && p.step.expect === 'accept');
  // the coordinator must be up for operator actions (and a while after a restart); they never run into its fault
  const coordinatorSpan = (p: Span) => ({ from: p.from, to: p.to + s.coordinatorSettleMs });
  if (!fault && placed.some((p) => p.step.kind === 'kill-coordinator' && overlaps(coordinatorSpan(p), span))) return 'coordinator down or settling';
  if (fault && step.kind === 'kill-coordinator' && placed.some((p) => !isFault(p.step.kind) && overlaps(p, { from: span.from - s.coordinatorSettleMs, to: span.to }))) return 'an operator action is running';
  const window = (p: Step) => ({ from: p.at, to: p.at + s.operatorWindowMs });
  if (!fault) {
    // one operator action at a time: a drain's switchovers and a manual one on the same store conflict
    if (step.expect === 'accept' && liveOps.length) return 'another operator action runs';
    if (step.expect === 'refuse') return undefined;
    const busy = placed.filter((p) => isFault(p.step.kind) && overlaps(p, window(step)));
    if ((step.kind === 'drain' || step.kind === 'rebalance') && busy.length) return 'needs a quiet cluster'; // they touch every machine
    if (busy.some((p) => p.step.machines.some((m) => step.machines.includes(m)))) return 'a fault touches its machines';
    return undefined;
  }
  // while an accepted operator action runs, faults keep off its machines (off every machine for a drain or rebalance)
  for (const p of placed.filter((q) => !isFault(q.step.kind) && q.step.expect === 'accept' && overlaps(window(q.step), span))) {
    if (p.step.kind === 'drain' || p.step.kind === 'rebalance' || p.step.machines.some((m) => step.machines.includes(m))) return `operator action #${p.step.id} runs there`;
  }
  for (const p of liveFaults) {
    const shared = p.step.machines.filter((m) => step.machines.includes(m));
    // a clock step may share its machine with another fault: that is the point (leases must not follow the wall clock)
    if (shared.length && step.kind !== 'clock-step' && p.step.kind !== 'clock-step') return `#${p.step.id} already on ${shared.join(', ')}`;
    if (step.kind === 'kill-coordinator' && p.step.kind === 'kill-coordinator') return 'coordinator already down';
    if (s.globalHeal && NETWORK_KINDS.includes(step.kind) && NETWORK_KINDS.includes(p.step.kind)) return 'heal() is global: network faults one at a time';
  }
  if (DOWN_KINDS.includes(step.kind)) {
    const down = liveFaults.filter((p) => DOWN_KINDS.includes(p.step.kind));
    const limit = s.several ? s.maxAutoFailover : 1;
    if (down.length + 1 > limit) return `${down.length} machine(s) already down (limit ${limit})`;
  }
  return undefined;
}

/** The steps of a run, sorted by time. Same seed and inputs → the same schedule. */
export function generateSchedule(seed: number, minutes: number, machines: readonly string[], options: ScheduleOptions = {}): Schedule {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ScheduleInputError(`seed must be an integer 0…4294967295, not ${seed}`);
  if (!(minutes > 0)) throw new ScheduleInputError(`minutes must be positive, not ${minutes}`);
  if (machines.length < 2 || new Set(machines).size !== machines.length) throw new ScheduleInputError(`need at least two distinct machines, not [${machines.join(', ')}]`);
  const s = settingsOf(minutes, machines, options);
  const rng = new Rng(seed);
  const endMs = minutes * 60_000;
  const placed: Span[] = [];
  const weights = s.kinds.map((k) => [k, s.weights[k]] as [StepKind, number]).filter(([, w]) => w > 0);
  let at = s.warmupMs;
  while (weights.length && at < endMs - s.settleMs) {
    // a few candidates per draw: a crowded moment places nothing rather than bending a rule
    for (let tries = 0; tries < 4; tries++) {
      const step = draw(rng, rng.weighted(weights), at, machines, s, placed);
      const span = spanOf(step, s);
      if (admissible(step, span, s, placed, endMs)) continue;
      if (DOWN_KINDS.includes(step.kind)) {
        const with_ = placed.filter((p) => DOWN_KINDS.includes(p.step.kind) && overlaps(p, span));
        // every member of a several-down moment says so, not only the one that made it several
        for (const p of with_) p.step.several = true;
        if (with_.length) step.several = true;
      }
      // only a clock step may share a target (admissible): the later of the two says it was meant
      const shared = isFault(step.kind) ? placed.filter((p) => isFault(p.step.kind) && overlaps(p, span) && p.step.machines.some((m) => step.machines.includes(m))) : [];
      if (shared.length) step.why = `meant: shares ${step.target} with #${shared.map((p) => `${p.step.id} ${p.step.kind}`).join(', #')}`;
      step.id = placed.length;
      placed.push(span);
      break;
    }
    at += Math.max(250, Math.round(-Math.log(1 - rng.float()) * s.meanGapMs)); // exponential gaps: bursts and lulls
  }
  if (s.kinds.includes('cut-coordinator')) overlayCoordinatorCuts(seed, machines, s, placed, endMs);
  // by time, numbered in that order (the overlay's steps fall between the others; a `why` naming a step follows it)
  const steps = placed.map((p) => p.step).sort((a, b) => a.at - b.at || a.id - b.id);
  const renumbered = new Map(steps.map((step, i) => [step.id, i]));
  for (const [i, step] of steps.entries()) {
    step.id = i;
    if (step.why) step.why = step.why.replace(/#(\d+)/g, (_, n: string) => `#${renumbered.get(Number(n)) ?? n}`);
  }
  return { seed, minutes, machines: [...machines], steps };
}

/** Mean time between two cuts of a machine from the coordinator alone. */
const COORDINATOR_CUT_GAP_MS = 60_000;

/**
 * Cuts of one machine from the coordinator alone, drawn from a random stream of their own (the seed's, mixed) and
 * placed where the rules allow among the steps already placed: the schedule a seed gave before this fault existed
 * stays as it was, with these in its gaps.
 */
function overlayCoordinatorCuts(seed: number, machines: readonly string[], s: Settings, placed: Span[], endMs: number): void {
  const rng = new Rng((seed ^ 0x5bd1e995) >>> 0);
  let at = s.warmupMs + Math.round(-Math.log(1 - rng.float()) * COORDINATOR_CUT_GAP_MS);
  while (at < endMs - s.settleMs) {
    const step = draw(rng, 'cut-coordinator', at, machines, s, placed);
    const span = spanOf(step, s);
    // not even beside a clock step on its machine: the steps placed before it were numbered without it
    const sharing = placed.some((p) => isFault(p.step.kind) && overlaps(p, span) && p.step.machines.some((m) => step.machines.includes(m)));
    if (!sharing && !admissible(step, span, s, placed, endMs)) {
      step.id = placed.length;
      placed.push(span);
    }
    at += Math.max(1000, Math.round(-Math.log(1 - rng.float()) * COORDINATOR_CUT_GAP_MS));
  }
}

export interface ScheduleSummary {
  faults: Partial<Record<FaultKind, number>>;
  operator: Partial<Record<OperatorKind, { accept: number; refuse: number }>>;
  /** Faults that were part of several machines down at once. */
  several: number;
  /** Sum of fault durations, ms. */
  faultMs: number;
}

export function summarizeSchedule(schedule: Schedule): ScheduleSummary {
  const out: ScheduleSummary = { faults: {}, operator: {}, several: 0, faultMs: 0 };
  // in the order of the kind lists, so two summaries read alike
  const order = [...FAULT_KINDS, ...OPERATOR_KINDS] as readonly StepKind[];
  for (const step of [...schedule.steps].sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))) {
    if (isFault(step.kind)) {
      out.faults[step.kind] = (out.faults[step.kind] ?? 0) + 1;
      out.faultMs += step.duration;
      if (step.several) out.several++;
    } else {
      const o = (out.operator[step.kind] ??= { accept: 0, refuse: 0 });
      o[step.expect ?? 'accept']++;
    }
  }
  return out;
}

/** What the nemesis does at the start and at the end of each step, in time order. */
export const START_ACTION: Record<StepKind, string> = {
  crash: 'crash (power cut)', isolate: 'isolate (switch port down)', cut: 'cut (frames between them dropped)', 'pause-short': 'pauseAgent (SIGSTOP)', 'pause-long': 'pauseAgent (SIGSTOP)',
  'kill-agent': 'kill -9 of the agent', 'kill-fence': 'kill -9 of the fence process', 'kill-coordinator': 'kill -9 of the coordinator', 'clock-step': 'wall clock stepped', 'fill-partition': 'partition filled', 'cut-coordinator': 'cut from the coordinator (its partners still reach both)',
  switchover: 'slotctl store switchover', drain: 'slotctl machine drain', rebalance: 'slotctl plan rebalance --apply', cleanup: 'slotctl cleanup run --machine', replay: 'slotctl slot replay',
};
export const END_ACTION: Record<StepKind, string> = {
  crash: 'powerOn + slotctl machine recover', isolate: 'heal', cut: 'heal', 'pause-short': 'resumeAgent (SIGCONT)', 'pause-long': 'resumeAgent (SIGCONT)',
  'kill-agent': 'agent started', 'kill-fence': 'fence running again (restarted if the agent did not)', 'kill-coordinator': 'coordinator started', 'clock-step': 'wall clock stepped back', 'fill-partition': 'space freed', 'cut-coordinator': 'heal',
  switchover: 'result checked', drain: 'slotctl machine undrain', rebalance: 'result checked', cleanup: 'result checked', replay: 'result checked',
};

export interface NemesisAction {
  at: number;
  step: Step;
  phase: 'start' | 'end';
}

export function nemesisActions(schedule: Schedule): NemesisAction[] {
  const out = schedule.steps.flatMap((step) => [
    { at: step.at, step, phase: 'start' as const },
    { at: step.at + step.duration, step, phase: 'end' as const },
  ]);
  return out.sort((a, b) => a.at - b.at || (a.phase === b.phase ? a.step.id - b.step.id : a.phase === 'end' ? -1 : 1));
}

/** +mm:ss.s from the run's start. */
export function clock(ms: number): string {
  const tenths = Math.round(ms / 100); // rounded once, so 59.96 s reads 01:00.0, not 00:60.0
  const min = Math.floor(tenths / 600);
  return `+${String(min).padStart(2, '0')}:${((tenths - min * 600) / 10).toFixed(1).padStart(4, '0')}`;
}

function details(step: Step): string {
  const parts: string[] = [];
  if (step.kind === 'clock-step') parts.push(`${step.clockStepMs! > 0 ? 'forward' : 'back'} ${(Math.abs(step.clockStepMs!) / 1000).toFixed(1)} s, then as far the other way`);
  if (step.kind === 'fill-partition') parts.push(`slot #${step.slotIndex} ${step.partition}`);
  if (step.several) parts.push('several down');
  if (step.expect) parts.push(`expect ${step.expect}`);
  if (step.why) parts.push(step.why);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

/** The schedule as lines a person reads in a failure report, with the seed that replays it. */
export function renderSchedule(schedule: Schedule): string[] {
  const sum = summarizeSchedule(schedule);
  const faults = Object.entries(sum.faults).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const ops = Object.entries(sum.operator).map(([k, n]) => `${k} ${n.accept}+${n.refuse} refused`).join(', ') || 'none';
  const lines = [`seed ${schedule.seed}, ${schedule.minutes} min, machines ${schedule.machines.join(' ')} (replay: --seed ${schedule.seed} --minutes ${schedule.minutes})`, `faults: ${faults}`, `operator actions: ${ops}`];
  for (const step of schedule.steps) {
    const end = step.duration ? ` → ${clock(step.at + step.duration)} ${END_ACTION[step.kind]}` : '';
    lines.push(`#${String(step.id).padEnd(3)} ${clock(step.at)} ${step.kind.padEnd(16)} ${step.target.padEnd(10)} ${START_ACTION[step.kind]}, ${(step.duration / 1000).toFixed(1)} s${end}${details(step)}`);
  }
  return lines;
}
