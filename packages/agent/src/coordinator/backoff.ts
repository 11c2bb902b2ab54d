/** Exponential reconnect delay with ±20 % jitter, so agents that lost the same coordinator do not return in step. */
export function reconnectDelay(attempt: number, baseMs = 250, capMs = 5000, random = Math.random): number {
  const exp = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.round(exp * (0.8 + 0.4 * random()));
}
