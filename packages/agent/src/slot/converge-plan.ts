// Pure: what one slot does to reach its desired state — the decision the supervisor's converge() used to make inline,
// as one plan read from what it had (the previous desired state, the config on disk, the lifecycle) and what it is
// given. The supervisor carries the plan out; its steps fire the lifecycle table's transitions.
import type { AppliedSlot } from '../state/apply-plan.js';
import type { SlotLifecycle } from './lifecycle.js';
import { differsOnlyInHeader, differsOnlyInRecoverListener, differsOnlyInReplication } from './render.js';

export interface ConvergeInput {
  lifecycle: SlotLifecycle;
  /** A cyrmaster PID is known (running, or adopted). */
  hasPid: boolean;
  /** The desired state converged to last time (undefined: the first one since the agent started). */
  before: AppliedSlot | undefined;
  desired: AppliedSlot;
  /** Desired to run (not stopped). */
  run: boolean;
  /** The operator asked for a start again (a new start generation): a failed slot tries once more. */
  retry: boolean;
  /** imapd.conf and cyrus.conf as they are on disk ('' when missing). */
  onDisk: readonly [imapdConf: string, cyrusConf: string];
  rendered: { imapdConf: string; cyrusConf: string };
  /** The recovery whose listener a master must have open ('' = none). */
  recoverListen: string;
  /** The config the previous desired state renders (what a running slot runs, if it is what is on disk). */
  renderedBefore?: { imapdConf: string; cyrusConf: string };
  /** The machine holds its lease: a master may serve now (otherwise a promoted replica stops and waits for it). */
  mayServe: boolean;
  /**
   * The running cyrmaster was promoted in place. Cyrus 3.6 keeps a removed service's entry, and a later SIGHUP that
   * changes services again closed listeners that were not its own (measured: after the promotion's SIGHUP, opening
   * the recovery listener closed IMAP on the service IP, closing it closed LMTP there) — so such a master is restarted
   * for the next change of services rather than signalled.
   */
  reloaded?: boolean;
}

/** The steps of an ordinary convergence, in order; each is a lifecycle transition. */
export interface ConvergeSteps {
  /** Stop the running cyrmaster first, and why. */
  stop?: 'config changed' | 'desired stopped';
  /** Write the config (the 'configured' transition). */
  configure: boolean;
  /** A failed slot desired stopped: its crash loop is cleared. */
  clearFailed: boolean;
  /** Start cyrmaster. */
  start: boolean;
}

export type ConvergePlan =
  /** Only the recovery listener differs: cyrus.conf rewritten and SIGHUP, no restart ('' closes it). */
  | { kind: 'toggle-recover-listener'; op: string; why: string }
  /** A new epoch with the same role and settings: only the config header is rewritten, cyrmaster keeps running. */
  | { kind: 'rewrite-header'; why: string }
  /**
   * A serving master whose replication targets changed (a replica being moved: the second channel added, or the switch
   * to the new replica): config written, SIGHUP, its sync_clients restarted with the new settings; services untouched.
   */
  | { kind: 'reload-sync'; why: string }
  /** A serving replica becomes master: its cyrmaster reloads the master's config (promote-in-place.ts). */
  | { kind: 'promote-in-place'; why: string; recoverWanted: string }
  | ({ kind: 'steps'; why: string; recoverWanted: string } & ConvergeSteps);

const isRunning = (l: SlotLifecycle) => l === 'starting' || l === 'serving';

export function planConverge(input: ConvergeInput): ConvergePlan {
  const { desired, rendered, onDisk, run } = input;
  const running = isRunning(input.lifecycle);
  const listen = desired.role === 'MASTER' && input.recoverListen !== '';
  if (running && run && input.hasPid && !input.reloaded && onDisk[0] === rendered.imapdConf && differsOnlyInRecoverListener(onDisk[1], rendered.cyrusConf)) {
    return { kind: 'toggle-recover-listener', op: listen ? input.recoverListen : '', why: listen ? 'a recovery needs the listener' : 'no recovery needs the listener' };
  }
  const configChanged = onDisk[0] !== rendered.imapdConf || onDisk[1] !== rendered.cyrusConf;
  // a new epoch with the same role and the same settings (a replaced replica keeps its IP): no restart, the running
  // cyrmaster already does what the new config says
  const sameElse = (a: string, b: string) => a === b || differsOnlyInHeader(a, b);
  if (running && run && input.hasPid && input.before?.role === desired.role && configChanged && sameElse(onDisk[0], rendered.imapdConf) && sameElse(onDisk[1], rendered.cyrusConf)) {
    return { kind: 'rewrite-header', why: 'new epoch, same role and settings' };
  }
  // a serving master that only replicates elsewhere (or to one more replica): reloaded, not restarted — unless it was
  // promoted in place (Cyrus 3.6 mixes up a reloaded master's entries at a second SIGHUP that changes them: restarted)
  if (
    input.lifecycle === 'serving' && run && input.hasPid && !input.reloaded && input.before?.role === 'MASTER' && desired.role === 'MASTER' &&
    input.before.dataPath === desired.dataPath && input.before.metaPath === desired.metaPath && input.before.slotIp === desired.slotIp &&
    differsOnlyInReplication({ imapdConf: onDisk[0], cyrusConf: onDisk[1] }, rendered)
  ) {
    return { kind: 'reload-sync', why: desired.moveTargetIp ? `also replicating to ${desired.moveTargetIp} (a replica being moved)` : `replicating to ${desired.peerIp}` };
  }
  // a serving replica promoted with its paths and slot IP unchanged, running exactly the config its previous desired
  // state renders: reloaded as master, not restarted (the order of a restart's steps is kept: config, address, serve)
  const b = input.before;
  if (
    input.lifecycle === 'serving' && run && input.hasPid && input.mayServe && b?.role === 'REPLICA' && desired.role === 'MASTER' &&
    b.dataPath === desired.dataPath && b.metaPath === desired.metaPath && b.slotIp === desired.slotIp &&
    input.renderedBefore !== undefined && sameElse(onDisk[0], input.renderedBefore.imapdConf) && sameElse(onDisk[1], input.renderedBefore.cyrusConf)
  ) {
    return { kind: 'promote-in-place', why: 'a serving replica promoted: reloaded as master without a restart', recoverWanted: listen ? input.recoverListen : '' };
  }
  // the lifecycle as each step leaves it
  let lifecycle = input.lifecycle;
  const stop = running && (configChanged || !run) ? (configChanged ? 'config changed' : 'desired stopped') : undefined;
  if (stop) lifecycle = 'stopped';
  const configure = configChanged || lifecycle === 'absent';
  if (configure) lifecycle = 'configured';
  const clearFailed = lifecycle === 'failed' && !run;
  if (clearFailed) lifecycle = 'stopped';
  const epochMoved = input.before !== undefined && input.before.epoch !== desired.epoch;
  // a failed slot stays failed until the desired state changes or an operator starts it
  const heldFailed = lifecycle === 'failed' && !epochMoved && !input.retry;
  const start = run && !heldFailed && !isRunning(lifecycle);
  const why = [stop && `stop (${stop})`, configure && 'write config', clearFailed && 'clear the crash loop', start && 'start', heldFailed && 'stay failed until the desired state changes or an operator starts it'].filter(Boolean).join(', ') || 'nothing to do';
  return { kind: 'steps', why, recoverWanted: listen ? input.recoverListen : '', ...(stop ? { stop } : {}), configure, clearFailed, start };
}
