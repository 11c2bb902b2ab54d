// A slot's addresses as its supervisor uses them: taken before cyrmaster starts (one someone else answers for
// refuses the start), the service IP given up when a master stops, the drift the periodic reconciliation repairs;
// each told to the operator (log, event, metric). Binding them under one lock is SlotAddresses' (vip/).
import { withContext, type Logger } from '@slotctl/shared';
import type { AppliedSlot } from '../state/apply-plan.js';
import { SlotAddresses, describeDrift } from '../vip/slot-addresses.js';
import type { SlotRuntime } from './runtime.js';

export class AddressKeeper {
  /** The slot IP and, while it runs as master, the service IP it holds; reconciled with the interface. */
  private readonly held: SlotAddresses;
  private lastDrift = '';

  /** `slot`: the supervisor, whose last error an address not taken or not released becomes. */
  constructor(
    private readonly slot: { readonly name: string; lastError: string },
    private readonly rt: Pick<SlotRuntime, 'vip' | 'onChange' | 'onEvent' | 'metrics'>,
    private readonly log: Logger,
  ) {
    this.held = new SlotAddresses(rt.vip);
  }

  /** Set while the held service IP could not be bound again: the master does not serve. */
  get serviceProblem(): string | undefined {
    return this.held.serviceProblem;
  }

  get heldServiceIp(): string | undefined {
    return this.held.heldServiceIp;
  }

  /** A cyrmaster re-adopted at agent start: its addresses are taken already. */
  adopted(d: AppliedSlot): void {
    this.held.adopted(d.slotIp, d.role === 'MASTER' ? d.serviceIp : undefined);
  }

  /**
   * Takes the slot's own IP, and the store's service IP for a master, before cyrmaster starts (Cyrus listens on
   * them). An address someone else answers for is refused: the slot does not start, and the operator hears of it.
   */
  async take(d: AppliedSlot): Promise<boolean> {
    try {
      await this.held.take(d.slotIp, d.role === 'MASTER' ? d.serviceIp : undefined);
      return true;
    } catch (err) {
      this.slot.lastError = `cannot take its addresses: ${(err as Error).message}`;
      this.log.error({ slotIp: d.slotIp, serviceIp: d.role === 'MASTER' ? d.serviceIp : undefined, err: (err as Error).message }, 'not starting: address not taken');
      this.rt.onEvent((err as { code?: string }).code === 'AddressConflict' ? 'address-conflict' : 'address-error', this.slot.lastError);
      this.rt.onChange();
      return false;
    }
  }

  /** Gives up the service IP this slot holds (stop, fence, crash loop); a failure is the slot's last error. */
  async releaseService(): Promise<void> {
    const ip = this.held.heldServiceIp;
    try {
      await this.held.releaseService();
    } catch (err) {
      this.slot.lastError = `cannot release ${ip}: ${(err as Error).message}`;
      this.log.error({ ip, err: (err as Error).message }, 'service IP not released');
    }
  }

  /** A replica never holds its store's address (an old master back after a crash may still have it bound). */
  releaseForReplica(serviceIp: string): Promise<void> {
    return this.held.releaseUnheld(serviceIp).catch((err: Error) => this.log.warn({ ip: serviceIp, err: err.message }, 'could not release the service IP of a replica'));
  }

  /** Removed from this machine: both addresses go. */
  releaseAll(slotIp: string | undefined): Promise<void> {
    return this.held.releaseAll(slotIp).catch((err: Error) => this.log.warn({ err: err.message }, "could not release the slot's addresses"));
  }

  /**
   * The addresses held are on the interface (`bound`), and the store's service IP is nowhere else on it unless
   * `mayServe`; each drift repaired is logged and raised as an event.
   */
  async reconcile(bound: ReadonlySet<string>, d: AppliedSlot, mayServe: boolean): Promise<void> {
    const hadProblem = this.held.serviceProblem;
    const drifts = await this.held.reconcile(bound, { serviceIp: d.serviceIp }, mayServe);
    if (drifts.length === 0) this.lastDrift = '';
    for (const drift of drifts) {
      const what = describeDrift(drift);
      withContext(this.log, { store: d.store, epoch: d.epoch }).warn({ ip: drift.ip, drift: drift.drift, repaired: drift.repaired }, what);
      // a repair is an event each time; a failure that repeats every second is one event until it changes
      if (drift.repaired || what !== this.lastDrift) this.rt.onEvent(drift.repaired ? 'address-repaired' : 'address-error', what);
      if (drift.repaired) this.rt.metrics?.vipRepaired(this.slot.name);
      this.lastDrift = drift.repaired ? '' : what;
    }
    if (hadProblem !== this.held.serviceProblem) this.rt.onChange();
  }
}
