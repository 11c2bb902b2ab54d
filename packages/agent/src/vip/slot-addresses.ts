// The addresses one slot holds on the interface: its own IP (from its first start until it is removed) and, while
// it runs as master with a lease, its store's service IP. Every bind and release of them goes through one lock, so
// the periodic reconciliation never sees a half-done change (a release whose address is gone but still counted as
// held would be bound again, under the new master's duplicate-address probe).
//
// Level-triggered: `reconcile` compares what must be bound with what the interface has, binds what is missing (with
// the conflict probe), releases what must not be there, and returns one drift record per repair.
import type { VipDriver } from './driver.js';

export interface AddressDrift {
  ip: string;
  kind: 'slot IP' | 'service IP';
  /** missing: was held but gone from the interface; stray: on the interface but not held. */
  drift: 'missing' | 'stray';
  /** What was done: bound again, released, or the error that stopped it. */
  repaired: boolean;
  error?: string;
}

/** The sentence an operator reads for one drift (logged, and raised as an event). */
export function describeDrift(d: AddressDrift): string {
  if (d.drift === 'missing') return `${d.kind} ${d.ip} was missing from the interface: ${d.repaired ? 'bound again' : `could not bind it again (${d.error})`}`;
  return `${d.kind} ${d.ip} was on the interface although this slot does not serve it as master: ${d.repaired ? 'released' : `could not release it (${d.error})`}`;
}

export class SlotAddresses {
  private slotIp: string | undefined;
  private serviceIp: string | undefined;
  /** Set while a held service IP could not be bound again: the master does not serve. */
  serviceProblem: string | undefined;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(private readonly vip: VipDriver) {}

  get heldServiceIp(): string | undefined {
    return this.serviceIp;
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.lock.then(fn);
    this.lock = next.catch(() => undefined);
    return next;
  }

  /** A running slot found at agent start: its addresses are taken already. */
  adopted(slotIp: string, serviceIp: string | undefined): void {
    this.slotIp = slotIp;
    this.serviceIp = serviceIp;
  }

  /**
   * Binds the slot IP and the service IP (a master) at once — each probe is a wait, not work; throws (e.g.
   * AddressConflictError) naming the address. Whichever was bound is held (and released like any held address).
   */
  take(slotIp: string, serviceIp: string | undefined): Promise<void> {
    return this.locked(async () => {
      const [slot, service] = await Promise.allSettled([this.vip.bind(slotIp), serviceIp ? this.vip.bind(serviceIp) : Promise.resolve()]);
      if (slot.status === 'rejected') {
        // a slot that cannot start must not hold its store's address (one it held before is left to its release)
        if (serviceIp && service.status === 'fulfilled' && this.serviceIp !== serviceIp) await this.vip.unbind(serviceIp).catch(() => undefined);
        throw slot.reason;
      }
      this.slotIp = slotIp;
      if (service.status === 'rejected') throw service.reason;
      if (serviceIp) {
        this.serviceIp = serviceIp;
        this.serviceProblem = undefined;
      }
    });
  }

  /** Releases the service IP this slot holds (stop, fence, crash loop). */
  releaseService(): Promise<void> {
    return this.locked(async () => {
      const ip = this.serviceIp;
      if (!ip) return;
      await this.vip.unbind(ip);
      this.serviceIp = undefined;
      this.serviceProblem = undefined;
    });
  }

  /** A replica never holds its store's address (an old master back after a crash may still have it bound). */
  releaseUnheld(ip: string): Promise<void> {
    return this.locked(async () => {
      if (this.serviceIp !== ip) await this.vip.unbind(ip);
    });
  }

  /** Removed from this machine: both addresses go. */
  releaseAll(slotIp: string | undefined): Promise<void> {
    return this.locked(async () => {
      if (this.serviceIp) await this.vip.unbind(this.serviceIp);
      this.serviceIp = undefined;
      const ip = this.slotIp ?? slotIp;
      if (ip) await this.vip.unbind(ip);
      this.slotIp = undefined;
    });
  }

  /**
   * One reconciliation against `bound` (the interface's addresses, listed once for all slots): `known.serviceIp` is
   * the store's service IP (bound here only while held), `mayServe` whether a master may hold it now (the lease).
   */
  reconcile(bound: ReadonlySet<string>, known: { serviceIp: string }, mayServe: boolean): Promise<AddressDrift[]> {
    return this.locked(async () => {
      const drifts: AddressDrift[] = [];
      const want = new Map<string, AddressDrift['kind']>();
      if (this.slotIp) want.set(this.slotIp, 'slot IP');
      if (this.serviceIp && mayServe) want.set(this.serviceIp, 'service IP');
      for (const [ip, kind] of want) {
        // the list may be a moment old: look again before calling it drift
        if (bound.has(ip) || (await this.vip.isBound(ip))) continue;
        try {
          await this.vip.bind(ip);
          if (kind === 'service IP') this.serviceProblem = undefined;
          drifts.push({ ip, kind, drift: 'missing', repaired: true });
        } catch (err) {
          const error = (err as Error).message;
          if (kind === 'service IP') this.serviceProblem = `service IP ${ip} is not bound: ${error}`;
          drifts.push({ ip, kind, drift: 'missing', repaired: false, error });
        }
      }
      // only the service IP can be stray: the slot IP is wanted from the first start on
      const ip = known.serviceIp;
      if (ip && !want.has(ip) && bound.has(ip) && (await this.vip.isBound(ip))) {
        try {
          await this.vip.unbind(ip);
          drifts.push({ ip, kind: 'service IP', drift: 'stray', repaired: true });
        } catch (err) {
          drifts.push({ ip, kind: 'service IP', drift: 'stray', repaired: false, error: (err as Error).message });
        }
      }
      return drifts;
    });
  }
}
