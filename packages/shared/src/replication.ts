// Stuck, not merely stalled: the replica accepts connections and the rolling sync_client still makes no progress (a
// loop on one mailbox, which replicates nothing else: critical). The agent's sync watcher says which in the stall
// reason it writes (agent sync/watch.ts); the coordinator's events and the agent's metrics both read it here.
export function isReplicationStuck(backlog: { stalled?: boolean | null; stallReason?: string | null }): boolean {
  return Boolean(backlog.stalled) && /accepts connections/.test(backlog.stallReason ?? '');
}
