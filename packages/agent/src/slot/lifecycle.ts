// Pure: a slot's lifecycle on the agent as a transition table. States cause no actions; transitions do. Every
// transition carries a reason that ends up in the logs and the slot's report.

export type SlotLifecycle = 'absent' | 'configured' | 'starting' | 'serving' | 'stopping' | 'stopped' | 'failed';

export type SlotEvent =
  | 'configured' // desired state names the slot; its config is written
  | 'start' // it should run and does not
  | 'promote' // a serving replica becomes master: reloaded, not restarted (promote-in-place.ts)
  | 'ready' // IMAP answered * OK
  | 'crashed' // cyrmaster exited without being asked to
  | 'crash-loop' // too many crashes in the window
  | 'stop' // it should not run (stop requested, role change, removal, agent exit)
  | 'exited' // cyrmaster exited after we asked it to stop
  | 'removed' // desired state no longer names the slot
  | 'blocked' // a check before start failed (preflight/): cyrmaster is not started, the check is tried again
  | 'unsafe' // its directories are not safe for root to act in (a symlink, a path outside the disks)
  | 'fenced'; // the machine's lease ran out: a master is killed and stays down until the lease is held again

/**
 * What a transition does; the supervisor runs the action of the row that fired, after the state has changed (so that
 * an exit noticed meanwhile is read against the new state), and nowhere else.
 */
export const SLOT_ACTIONS = {
  none: 'nothing',
  'write-config': "writes the slot's directories, imapd.conf and cyrus.conf (a replica first lets go of its store's service IP)",
  spawn: 'starts cyrmaster in its own process group as cyrus (or takes over one already running for the slot)',
  'reload-as-master': "writes the master's imapd.conf and cyrus.conf, takes the store's service IP, SIGHUP to the running cyrmaster",
  'stop-cyrmaster': 'closes the service listeners and waits for deliveries in flight, releases the service IP, SIGTERM, SIGKILL of the group after the stop timeout',
  'schedule-restart': 'starts cyrmaster again after the backoff delay',
  'give-up': "releases the service IP (the slot stays down)",
  fence: "SIGKILL of cyrmaster's group, releases the service IP",
  forget: "releases the slot's addresses (its files stay)",
} as const;

export type SlotAction = keyof typeof SLOT_ACTIONS;

export interface SlotTransition {
  from: readonly SlotLifecycle[];
  event: SlotEvent;
  to: SlotLifecycle;
  action: SlotAction;
  reason: string;
}

export const SLOT_TRANSITIONS: readonly SlotTransition[] = [
  { from: ['absent', 'configured', 'stopped', 'failed'], event: 'configured', to: 'configured', action: 'write-config', reason: 'desired state rendered to imapd.conf and cyrus.conf' },
  { from: ['configured', 'stopped', 'failed', 'starting'], event: 'start', to: 'starting', action: 'spawn', reason: 'desired to run: starting cyrmaster' },
  { from: ['serving'], event: 'promote', to: 'starting', action: 'reload-as-master', reason: 'a serving replica promoted in place: reloaded as master without a restart' },
  { from: ['starting'], event: 'ready', to: 'serving', action: 'none', reason: 'IMAP answered * OK' },
  { from: ['starting', 'serving'], event: 'crashed', to: 'starting', action: 'schedule-restart', reason: 'cyrmaster exited unexpectedly, or did not greet within the ready timeout: restarting after backoff' },
  { from: ['starting', 'serving'], event: 'crash-loop', to: 'failed', action: 'give-up', reason: 'too many crashes in the window: not restarting until the desired state changes or an operator starts it' },
  { from: ['starting', 'serving'], event: 'stop', to: 'stopping', action: 'stop-cyrmaster', reason: 'desired to stop: SIGTERM to cyrmaster, SIGKILL of its group after the timeout' },
  { from: ['failed'], event: 'stop', to: 'stopped', action: 'none', reason: 'desired to stop: the crash loop is cleared' },
  { from: ['stopping'], event: 'exited', to: 'stopped', action: 'none', reason: 'cyrmaster and its children are gone' },
  { from: ['starting', 'serving', 'stopping'], event: 'fenced', to: 'stopped', action: 'fence', reason: 'lease ran out: cyrmaster killed and the service IP released (fence); starts again once the lease is held' },
  { from: ['configured', 'stopped', 'failed', 'starting'], event: 'blocked', to: 'failed', action: 'give-up', reason: 'a check before start failed: cyrmaster not started; checked again at each desired state and every few seconds' },
  { from: ['absent', 'configured', 'stopped', 'failed', 'starting'], event: 'unsafe', to: 'failed', action: 'give-up', reason: 'its files are unsafe for the agent (root) to touch: down until they are fixed and it is started again' },
  { from: ['configured', 'stopped', 'failed', 'absent'], event: 'removed', to: 'absent', action: 'forget', reason: 'no longer in the desired state (files are kept)' },
];

export function transition(from: SlotLifecycle, event: SlotEvent): SlotTransition | undefined {
  return SLOT_TRANSITIONS.find((t) => t.event === event && t.from.includes(from));
}

/** Crash-loop rule: `limit` crashes within `windowMs` → failed. Returns the crashes still inside the window. */
export function recentCrashes(crashTimes: readonly number[], now: number, windowMs: number): number[] {
  return crashTimes.filter((t) => now - t < windowMs);
}

/** Restart delay after the n-th crash in the window: 0.5 s, 1 s, 2 s, 4 s … capped at 10 s. */
export function restartDelayMs(crashesInWindow: number): number {
  return Math.min(10_000, 500 * 2 ** Math.max(0, crashesInWindow - 1));
}
