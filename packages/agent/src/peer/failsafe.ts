// Pure: the failsafe's two sides. A partner keeps a book of the promises it gave (no promotion against machine M
// until T); an asker keeps the last answer of each partner and derives how long its masters may serve on promises
// alone: until the earliest promise ends (less a margin), and only while *every* partner has one.
import type { ApplyPlan, AppliedSlots } from '../state/apply-plan.js';

export class PromiseBook {
  private readonly until = new Map<string, number>();

  give(machine: string, now: number, ms: number): void {
    // promises that ended bind nothing: the book holds no more than the partners with a live one
    for (const [m, t] of this.until) if (t <= now) this.until.delete(m);
    this.until.set(machine, Math.max(this.until.get(machine) ?? 0, now + ms));
  }

  /** How many machines the book holds promises for (live ones, and ended ones not yet dropped). */
  get size(): number {
    return this.until.size;
  }

  /** When the promise to `machine` ends, if one holds at `now`. */
  activeUntil(machine: string, now: number): number | undefined {
    const t = this.until.get(machine);
    return t !== undefined && t > now ? t : undefined;
  }
}

/**
 * The partner's side: how long it promises an asker (0: no promise). Only when it cannot reach the coordinator
 * either, or the coordinator it reaches has just started and promotes nothing until `graceUntil` (and not beyond
 * that). Never to an asker whose masters may no longer serve: promises extend a lease, they do not revive one.
 */
export function promiseFor(ask: { holds: boolean; promiseMs: number }, me: { reachable: boolean; graceUntil: number | undefined; maxMs: number }, now: number): number {
  if (!ask.holds) return 0;
  const ms = Math.min(ask.promiseMs, me.maxMs);
  if (!me.reachable) return Math.max(0, ms);
  return me.graceUntil === undefined ? 0 : Math.max(0, Math.min(ms, Math.floor(me.graceUntil - now)));
}

export interface PartnerAnswer {
  /** When the question left (CLOCK_MONOTONIC ms): the promise is counted from there, never from the answer. */
  sentAt: number;
  reachable: boolean;
  promisedMs: number;
  /**
   * What this agent asked for: its own lease. A longer promise is believed only that long — the partner gives no
   * more than it was asked, so anything beyond is a bug or a lie, and masters must not serve on it past a lease.
   */
  askedMs: number;
}

/** How long an answer's promise is believed: at most what was asked (the asker's lease); 0 for none or nonsense. */
export function cappedPromise(answer: Pick<PartnerAnswer, 'promisedMs' | 'askedMs'>): number {
  const ms = Math.min(answer.promisedMs, answer.askedMs);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms) : 0;
}

/**
 * The asker's side. A promise binds its partner until it ends, whatever the partner answers later: an answer "I
 * reach the coordinator" brings no new promise (unless that coordinator has just started and promotes nothing yet),
 * so the failsafe runs out within one promise — time enough for this agent to reconnect to a coordinator that came
 * back — but never ends earlier than the promises allow.
 */
export class FailsafeLedger {
  private readonly promisedUntil = new Map<string, number>();

  /** The asker's margin on every promise (lease-timing.ts failsafeMarginMs; follows the coordinator's lease). */
  constructor(public marginMs: number) {}

  /** A promise counts whether or not the partner reaches the coordinator (it may, during a restart's grace). */
  record(machine: string, answer: PartnerAnswer): void {
    const ms = cappedPromise(answer);
    if (ms <= 0) return;
    this.promisedUntil.set(machine, Math.max(this.promisedUntil.get(machine) ?? 0, answer.sentAt + ms));
  }

  /** Forgets machines that are no longer partners (their promises no longer count, and the map stays small). */
  retain(partners: ReadonlySet<string>): void {
    for (const m of this.promisedUntil.keys()) if (!partners.has(m)) this.promisedUntil.delete(m);
  }

  /** Until when the masters may serve on promises: undefined unless every partner holds a live promise. */
  deadline(partners: readonly string[], now: number): number | undefined {
    if (partners.length === 0) return undefined;
    let earliest = Infinity;
    for (const p of partners) {
      const end = (this.promisedUntil.get(p) ?? 0) - this.marginMs;
      if (end <= now) return undefined;
      earliest = Math.min(earliest, end);
    }
    return earliest;
  }
}

export interface Withheld {
  slot: string;
  machine: string;
  until: number;
}

/**
 * A promotion (this slot becomes master) against a machine this agent promised to is refused while the promise
 * holds: the slot keeps what it had applied, and the desired state is applied again when the promise ends.
 */
export function withholdPromotions(
  plan: ApplyPlan,
  previous: AppliedSlots,
  peerMachineOf: (slot: string) => string | undefined,
  book: PromiseBook,
  now: number,
): Withheld[] {
  const withheld: Withheld[] = [];
  for (const r of plan.results) {
    const slot = r.slot!;
    if (r.result !== 'CHANGED' || plan.next[slot]?.role !== 'MASTER' || previous[slot]?.role === 'MASTER') continue;
    const machine = peerMachineOf(slot);
    const until = machine ? book.activeUntil(machine, now) : undefined;
    if (!machine || until === undefined) continue;
    r.result = 'REFUSED';
    r.detail = `promised ${machine} (failsafe) not to accept a promotion against it for ${until - now} ms more; applied when the promise ends`;
    if (previous[slot]) plan.next[slot] = previous[slot];
    else delete plan.next[slot];
    withheld.push({ slot, machine, until });
  }
  return withheld;
}
