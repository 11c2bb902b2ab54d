// Pure: may this machine's masters serve now? The lease thread's shared deadline says "held" the moment a renewal is
// acknowledged; the main thread learns of the lapse before it (and so that the masters wait for the coordinator's
// confirmation) only when it handles the thread's `lost` message. In between — a millisecond or ten after a long stall
// (SIGSTOP) — a master was started from a desired state a failover had replaced, and only the address probe stopped
// it (test/failover.test.ts, SIGSTOP). The thread counts each lapse in shared memory before anything else, so a lapse
// not handled yet is seen at once.

export interface ServeGateView {
  /** The shared deadline is in the future (lease or failsafe). */
  holds: boolean;
  /** The lapses the lease thread has counted (LeaseKeeper.lapses()). */
  lapses: number;
  /** The lapses the main thread has handled (its `lost`). */
  lapsesHandled: number;
  /** Since the last lapse handled, the coordinator has not confirmed the desired state the masters were fenced under. */
  unconfirmed: boolean;
}

export function mayServeMaster(v: ServeGateView): boolean {
  return v.holds && v.lapses === v.lapsesHandled && !v.unconfirmed;
}

/** Heartbeats say `fenced` from a lapse (handled or not) until the masters may serve again. */
export function saysFenced(v: ServeGateView & { everHeld: boolean }): boolean {
  return (v.everHeld && !v.holds) || v.lapses !== v.lapsesHandled || v.unconfirmed;
}
