// Several coordinators, one leader (the etcd backend): a coordinator that is not the leader answers every call with
// UNAVAILABLE and, when it knows one, the leader's address in the `slotctl-leader` trailer. Agents and slotctl take
// a list of coordinator addresses and follow the hint (or try the next address) until they reach the leader.
import * as grpc from '@grpc/grpc-js';

export const LEADER_METADATA_KEY = 'slotctl-leader';

/** The status a follower answers with; `leader` is the leader's address when one is known. */
export function notLeaderStatus(self: string, leader: string | undefined): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (leader) metadata.set(LEADER_METADATA_KEY, leader);
  const details = leader
    ? `coordinator ${self} is not the leader; the leader is at ${leader}`
    : `coordinator ${self} is not the leader, and no leader is elected yet (etcd unreachable, or an election is under way)`;
  return { code: grpc.status.UNAVAILABLE, details, metadata };
}

/** From a failed call: whether a follower answered it, and the leader it named (undefined: none known). */
export function notLeaderOf(err: unknown): { leader: string | undefined } | undefined {
  if (typeof err !== 'object' || err === null || !('metadata' in err) || !('code' in err)) return undefined;
  const e = err as grpc.ServiceError;
  if (e.code !== grpc.status.UNAVAILABLE || !/is not the leader/.test(e.details ?? '')) return undefined;
  const leader = e.metadata?.get(LEADER_METADATA_KEY)[0]?.toString();
  return { leader: leader || undefined };
}

/** `a:7400,b:7400`: the coordinator addresses of a --coordinator flag, in order, each once. */
export function parseCoordinatorList(value: string): string[] {
  const list = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  if (list.length === 0) throw new Error('no coordinator address given');
  return list;
}
