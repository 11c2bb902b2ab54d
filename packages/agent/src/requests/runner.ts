// Runs the requests of each slot's desired state once per id: a request already answered under its id (or running)
// is not run again when the same desired state arrives again, and its answer stays in the slot's report until another
// id replaces it. Handlers (handlers.ts) say when they may run and what they answer; the runner keeps the books.
import { withContext, type DesiredSlot__Output, type Logger, type SlotResult } from '@slotctl/shared';
import type { SlotSupervisor } from '../slot/supervisor.js';
import type { RequestHandler, RequestResult, RequestServices, ResultStore } from './handler.js';

export interface RequestRunnerOptions {
  handlers: readonly RequestHandler[];
  services: RequestServices;
  log: Logger;
  /** Something worth reporting changed (a result recorded). */
  onChange: () => void;
  /** Per handler name: where its results are kept across restarts (the others are kept in memory). */
  stores?: Readonly<Record<string, ResultStore>>;
}

export class RequestRunner {
  /** Per slot, per handler: the last result (for handlers without a store). */
  private readonly results = new Map<string, Map<string, RequestResult>>();
  private readonly running = new Set<string>();

  constructor(private readonly options: RequestRunnerOptions) {}

  /** The last result of `handler` on `slot`. */
  last(slot: string, handler: string): RequestResult | undefined {
    return this.options.stores?.[handler]?.get(slot) ?? this.results.get(slot)?.get(handler);
  }

  /** Whether `handler` is running on `slot` now. */
  busy(slot: string, handler: string): boolean {
    return this.running.has(`${slot}/${handler}`);
  }

  /**
   * Starts every request the slot's desired state asks for that has not been answered under its id, in the order of
   * the handlers; those that wait are awaited one after the other, the others run on in the background.
   */
  async drive(s: SlotSupervisor, d: DesiredSlot__Output): Promise<void> {
    for (const handler of this.options.handlers) {
      const id = handler.requested(d);
      if (!id || this.last(s.name, handler.name)?.op === id || this.busy(s.name, handler.name) || !handler.mayRun(s, d)) continue;
      const run = this.runOne(s, d, handler, id);
      if (handler.waits) await run;
      else void run;
    }
  }

  private async runOne(s: SlotSupervisor, d: DesiredSlot__Output, handler: RequestHandler, id: string): Promise<void> {
    const key = `${s.name}/${handler.name}`;
    this.running.add(key);
    const log = withContext(this.options.log, { slot: s.name, store: d.store, epoch: d.epoch, op: id });
    try {
      let result: RequestResult | undefined;
      try {
        result = await handler.run({ s, d, id, log, services: this.options.services, changed: this.options.onChange });
      } catch (err) {
        log.error({ request: handler.name, err: (err as Error).stack }, 'a slot request failed unexpectedly');
        result = handler.failed?.(id, (err as Error).message);
      }
      if (!result) return;
      const store = this.options.stores?.[handler.name];
      if (store) await store.save(s.name, result);
      else {
        const of = this.results.get(s.name) ?? new Map<string, RequestResult>();
        of.set(handler.name, result);
        this.results.set(s.name, of);
      }
      this.options.onChange();
    } finally {
      this.running.delete(key);
    }
  }

  /** What the slot's report carries: the last result of every handler that reports one. */
  report(slot: string): SlotResult[] {
    const out: SlotResult[] = [];
    for (const handler of this.options.handlers) {
      const r = this.last(slot, handler.name);
      if (r && handler.asResult) out.push(handler.asResult(r));
      const progress = this.busy(slot, handler.name) ? handler.progress?.(slot) : undefined;
      if (progress) out.push(progress);
    }
    return out;
  }

  /** The slot left this machine: its in-memory results go with it. */
  forget(slot: string): void {
    this.results.delete(slot);
  }
}
