/** Exponential reconnect delay with ±20 % jitter, so agents that lost the same coordinator do not return in step. */
export function reconnectDelay(attempt: number, baseMs = 250, capMs = 5000, random = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(exp * (0.8 + 0.4 * random()));
}

/**
 * While this machine still holds its lease, the coordinator coming back within it is what keeps the masters up: the
 * session is tried again at most this long apart (jittered), not after the exponential delay (seconds by then).
 */
export const LEASE_HELD_RETRY_MS = 400;

/** The session's delay before its next attempt: short while the lease still holds, exponential after. */
export function sessionRetryDelay(attempt: number, leaseHeld: boolean, random = Math.random): number {
  const delay = reconnectDelay(attempt, undefined, undefined, random);
  return leaseHeld ? Math.min(delay, Math.round(LEASE_HELD_RETRY_MS * (0.8 + 0.4 * random()))) : delay;
}

/**
 * The session channel's options, the agent's and the simulated agents' (bench/sim-agent.ts) alike. grpc-js backs off
 * on its own between connection attempts; a session opened meanwhile fails at once. Its ceiling is 1 s, not grpc's
 * default 120 s nor the 2 s it was: after a coordinator restart (listening again ~1.5 s after the kill) agents in a
 * 2 s backoff came back ~3 s after the kill, when leases of 5 s were already near their end. 1,000 agents retrying
 * once a second against a coordinator that is down cost it nothing (the kernel refuses them).
 */
export const SESSION_CHANNEL_OPTIONS = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1_000,
} as const;
