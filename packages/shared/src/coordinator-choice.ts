// Which coordinator of a --coordinator list to try next, and whether a leadership term is stale: the pure half of
// following the leader, shared by the agent's link (a session that keeps reconnecting) and slotctl (one call at a
// time). leader.ts reads the follower's answer; this file decides what to do with it.

/** Leader hints followed at once, in a row, before a normal backoff: two confused followers naming each other cannot spin a client. */
export const MAX_LEADER_HOPS = 3;

/** How a try at one address ended, as far as choosing the next address goes. */
export type TryOutcome =
  /** A follower answered: `leader` is the address it named, undefined when none is elected yet. */
  | { kind: 'not-leader'; leader: string | undefined }
  /** Anything else that is not a session: no connection, the session broke, a deposed leader refused. */
  | { kind: 'failed' };

export interface ListPosition {
  /** Index in the list of the address tried. */
  index: number;
  /** Leader hints followed at once in a row to get there. */
  hops: number;
}

export interface NextTry extends ListPosition {
  /**
   * now: at once (a hint to the leader); soon: after a short pause (an election is under way, it ends in moments);
   * backoff: after the caller's reconnect backoff.
   */
  wait: 'now' | 'soon' | 'backoff';
  /** For the logs. */
  why: string;
}

/** The agent's next try after `outcome` at `at`: the named leader if the list holds it, else the next address round robin. */
export function nextCoordinator(list: readonly string[], at: ListPosition, outcome: TryOutcome, maxHops = MAX_LEADER_HOPS): NextTry {
  const following = (at.index + 1) % list.length;
  if (outcome.kind === 'failed') {
    // reached by a follower's hint and no session: that leader has just died, and followers name it until its etcd
    // lease expires (seconds). An election is under way: the short pause, not a backoff that doubles on every refusal
    // (seen: agents waiting out 1.6–2.4 s of backoff after the new leader was elected)
    if (at.hops > 0) return { index: following, hops: 0, wait: 'soon', why: 'the leader a follower named does not answer: an election is under way' };
    return { index: following, hops: 0, wait: 'backoff', why: 'next address' };
  }
  if (outcome.leader === undefined) return { index: following, hops: 0, wait: 'soon', why: 'no leader elected yet' };
  const leader = list.indexOf(outcome.leader);
  if (leader < 0) return { index: following, hops: 0, wait: 'backoff', why: `the leader it names, ${outcome.leader}, is not in the coordinator list` };
  // a follower naming the address just tried: the two disagree for a moment; ask the others
  if (leader === at.index) return { index: following, hops: 0, wait: 'backoff', why: 'it names itself as the leader' };
  if (at.hops < maxHops) return { index: leader, hops: at.hops + 1, wait: 'now', why: `the leader is ${outcome.leader}` };
  return { index: leader, hops: 0, wait: 'backoff', why: `${maxHops} leader hints followed in a row` };
}

/**
 * slotctl's next address within one call (no waiting: each address is tried at most once): the named leader if the
 * list holds it and it was not tried yet, else the next untried address in list order; undefined: all were tried.
 */
export function nextForCall(list: readonly string[], tried: ReadonlySet<number>, at: number, outcome: TryOutcome): number | undefined {
  if (outcome.kind === 'not-leader' && outcome.leader !== undefined) {
    const leader = list.indexOf(outcome.leader);
    if (leader >= 0 && !tried.has(leader)) return leader;
  }
  for (let k = 1; k < list.length; k++) {
    const i = (at + k) % list.length;
    if (!tried.has(i)) return i;
  }
  return undefined;
}

/** The pause after "no leader elected yet": 250–500 ms, jittered so that agents do not return in step. */
export function electionRetryDelay(random = Math.random): number {
  return Math.round(250 + 250 * random());
}

/**
 * Whether a message of leadership term `term` comes from a deposed leader, `newest` being the newest term seen.
 * Term 0 is a coordinator without elections (the SQLite backend, a single coordinator): it is never stale, and a
 * cluster moved from etcd back to SQLite is not refused for ever by agents that remember an etcd term.
 */
export function isStaleTerm(newest: number, term: number): boolean {
  return term !== 0 && term < newest;
}
