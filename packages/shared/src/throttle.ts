// One line or event per key and period: a refusal that anyone on the network can cause (a call without a
// certificate, a Peer call from a non-partner) is logged and recorded once per period, not once per call.

/** Says whether to log a repeated refusal: once per key every `everyMs`; at most `maxKeys` remembered. */
export class LogThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly everyMs = 10_000, private readonly maxKeys = 64) {}

  allow(key: string, now: number): boolean {
    const t = this.last.get(key);
    if (t !== undefined && now - t < this.everyMs) return false;
    this.last.delete(key);
    if (this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value!);
    this.last.set(key, now);
    return true;
  }
}
