// Pure: every timing derived from the lease (L) and the heartbeat interval (I), in one place so that the agent, its
// lease thread, its partners and the coordinator cannot disagree.
//
//   the agent's masters stop at   sent + L − agentMargin        (sent: when the acknowledged heartbeat left)
//   the coordinator declares down  heard + L + deadMargin        (heard ≥ sent)
//
// so a promotion comes at least agentMargin + deadMargin after the old masters stopped: the fence's 100 ms tick and
// the kill fit in it many times over. A blip of B ms costs no lease while B + I + renewEvery + a handshake <
// L − agentMargin (the last acknowledged heartbeat left up to I before the blip; a fresh renewal leaves every
// renewEvery and gets through once the blip ends). Detection after a crash takes L + deadMargin − (0…I).

export interface LeaseTimings {
  leaseMs: number;
  heartbeatIntervalMs: number;
  /** How long before its lease ends the agent gives it up (stops its masters). */
  agentMarginMs: number;
  /** How long after a lease without a heartbeat the coordinator declares the machine down. */
  deadMarginMs: number;
  /** While acknowledgements are overdue, a renewal (fresh connection or relay) this often. */
  renewEveryMs: number;
  /** How long one renewal over a fresh connection may wait for its answer (short: the next one dials anew). */
  renewTimeoutMs: number;
  /**
   * How long the renewal over the lease thread's kept connection may wait: as long as its answer can still help, a
   * lease less the agent's margin (the lease counts from when it left). On a saturated host the coordinator answered
   * in 1–3 s; with the fresh connections' 500 ms every renewal of a 2 s lease was abandoned before its answer came
   * and the fence fired (bench:failover start-up, 40 slots starting on 2 cores).
   */
  keptRenewTimeoutMs: number;
  /** How often an agent asks its partners (Peer.Confirm), and its margin on their promises. */
  peerIntervalMs: number;
  failsafeMarginMs: number;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

export function leaseTimings(leaseMs: number, heartbeatIntervalMs: number): LeaseTimings {
  const renewEveryMs = clamp(Math.round(heartbeatIntervalMs / 2), 100, 500);
  const agentMarginMs = Math.max(250, Math.round(leaseMs / 5));
  const renewTimeoutMs = clamp(3 * renewEveryMs, 500, 1500);
  return {
    leaseMs,
    heartbeatIntervalMs,
    agentMarginMs,
    deadMarginMs: Math.max(500, Math.round(leaseMs / 5)),
    renewEveryMs,
    renewTimeoutMs,
    keptRenewTimeoutMs: Math.max(renewTimeoutMs, leaseMs - agentMarginMs),
    peerIntervalMs: clamp(heartbeatIntervalMs, 250, 1000),
    failsafeMarginMs: Math.max(500, Math.round(leaseMs / 5)),
  };
}

/** Why a lease and interval cannot work together (undefined: they can). */
export function leaseTimingProblem(leaseMs: number, heartbeatIntervalMs: number): string | undefined {
  if (heartbeatIntervalMs < 100) return `a heartbeat interval of ${heartbeatIntervalMs} ms is below 100 ms`;
  if (leaseMs < 1000) return `a lease of ${leaseMs} ms is below 1 s`;
  const t = leaseTimings(leaseMs, heartbeatIntervalMs);
  if (leaseMs - t.agentMarginMs < 2 * heartbeatIntervalMs) {
    return `a lease of ${leaseMs} ms gives up ${t.agentMarginMs} ms early, leaving less than two heartbeat intervals (${heartbeatIntervalMs} ms each): one late acknowledgement would fence the masters`;
  }
  return undefined;
}
