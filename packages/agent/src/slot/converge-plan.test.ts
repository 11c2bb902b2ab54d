// planConverge read as a table: each row a situation and the plan it must give, with real rendered configs.
import { describe, expect, it } from 'vitest';
import type { AppliedSlot } from '../state/apply-plan.js';
import { planConverge, type ConvergeInput, type ConvergePlan, type ConvergeSteps } from './converge-plan.js';
import type { SlotLifecycle } from './lifecycle.js';
import { renderSlotConfig } from './render.js';

const master: AppliedSlot = { store: 's01', role: 'MASTER', epoch: 4, slotIp: '127.0.21.1', serviceIp: '127.0.20.1', peerSlot: 's01-m2', peerIp: '127.0.22.1', dataPath: '/d', metaPath: '/m' };
const replica: AppliedSlot = { ...master, role: 'REPLICA', epoch: 5 };
const promoted: AppliedSlot = { ...replica, role: 'MASTER', epoch: 6 };
const render = (desired: AppliedSlot, recoverListen = false) => renderSlotConfig({ slot: 's01-m1', desired, ports: { imap: 143, lmtp: 24, sync: 2005 }, auth: { mode: 'test', syncUser: 'admin', syncPassword: 'x' }, recoverListen });
const disk = (desired: AppliedSlot | undefined, recoverListen = false): [string, string] => (desired ? [render(desired, recoverListen).imapdConf, render(desired, recoverListen).cyrusConf] : ['', '']);

interface Row {
  case: string;
  lifecycle: SlotLifecycle;
  hasPid?: boolean;
  before?: AppliedSlot;
  desired: AppliedSlot;
  run?: boolean;
  retry?: boolean;
  onDisk: [string, string];
  recoverListen?: string;
  /** The machine holds its lease (default true). */
  mayServe?: boolean;
  /** Its cyrmaster was promoted in place. */
  reloaded?: boolean;
  plan: Partial<ConvergePlan> | Record<string, unknown>;
}

const steps = (s: { stop?: ConvergeSteps['stop']; configure?: boolean; clearFailed?: boolean; start?: boolean }) => ({ kind: 'steps' as const, stop: s.stop, configure: !!s.configure, clearFailed: !!s.clearFailed, start: !!s.start });

const ROWS: Row[] = [
  { case: 'first desired state, nothing on disk: write and start', lifecycle: 'absent', desired: master, onDisk: disk(undefined), plan: steps({ configure: true, start: true }) },
  { case: 'first desired state, desired stopped: write only', lifecycle: 'absent', desired: master, run: false, onDisk: disk(undefined), plan: steps({ configure: true }) },
  { case: 'adopted and unchanged: nothing', lifecycle: 'serving', hasPid: true, before: master, desired: master, onDisk: disk(master), plan: steps({}) },
  { case: 'config on disk the same but never started (configured): start without rewriting', lifecycle: 'configured', before: master, desired: master, onDisk: disk(master), plan: steps({ start: true }) },
  { case: 'role change of a running slot: stop, rewrite, start', lifecycle: 'serving', hasPid: true, before: master, desired: replica, onDisk: disk(master), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'desired stopped while serving: stop only', lifecycle: 'serving', hasPid: true, before: master, desired: master, run: false, onDisk: disk(master), plan: steps({ stop: 'desired stopped' }) },
  { case: 'new epoch, same role and settings: header only', lifecycle: 'serving', hasPid: true, before: master, desired: { ...master, epoch: 9 }, onDisk: disk(master), plan: { kind: 'rewrite-header' } },
  { case: 'new epoch, same role, but not running: rewrite and start', lifecycle: 'stopped', before: master, desired: { ...master, epoch: 9 }, onDisk: disk(master), plan: steps({ configure: true, start: true }) },
  { case: 'a recovery opens the listener of a running master: SIGHUP only', lifecycle: 'serving', hasPid: true, before: master, desired: master, recoverListen: 'rc-1', onDisk: disk(master), plan: { kind: 'toggle-recover-listener', op: 'rc-1' } },
  { case: 'the recovery ends: the listener closes, SIGHUP only', lifecycle: 'serving', hasPid: true, before: master, desired: master, onDisk: disk(master, true), plan: { kind: 'toggle-recover-listener', op: '' } },
  { case: 'a recovery listener asked of a stopped master: written with it and started', lifecycle: 'stopped', before: master, desired: master, recoverListen: 'rc-1', onDisk: disk(master), plan: { ...steps({ configure: true, start: true }), recoverWanted: 'rc-1' } },
  { case: 'a replica is never given the recovery listener', lifecycle: 'serving', hasPid: true, before: replica, desired: replica, recoverListen: 'rc-1', onDisk: disk(replica), plan: { ...steps({}), recoverWanted: '' } },
  { case: 'failed, same epoch: stays failed', lifecycle: 'failed', before: master, desired: master, onDisk: disk(master), plan: steps({}) },
  { case: 'failed, operator starts it again (new start generation): start', lifecycle: 'failed', before: master, desired: master, retry: true, onDisk: disk(master), plan: steps({ start: true }) },
  { case: 'failed, new epoch with the same config on disk: start', lifecycle: 'failed', before: master, desired: { ...master, epoch: 9 }, onDisk: disk({ ...master, epoch: 9 }), plan: steps({ start: true }) },
  { case: 'failed, the config changed: rewritten (no longer failed) and started', lifecycle: 'failed', before: master, desired: replica, onDisk: disk(master), plan: steps({ configure: true, start: true }) },
  { case: 'failed, desired stopped: the crash loop is cleared', lifecycle: 'failed', before: master, desired: master, run: false, onDisk: disk(master), plan: steps({ clearFailed: true }) },
  { case: 'starting (restart pending) and unchanged: nothing, the restart timer does it', lifecycle: 'starting', hasPid: false, before: master, desired: master, onDisk: disk(master), plan: steps({}) },
  { case: 'a serving replica promoted, paths and slot IP unchanged: reloaded in place', lifecycle: 'serving', hasPid: true, before: replica, desired: promoted, onDisk: disk(replica), plan: { kind: 'promote-in-place', recoverWanted: '' } },
  { case: 'promoted with a recovery listener wanted: reloaded in place with it', lifecycle: 'serving', hasPid: true, before: replica, desired: promoted, recoverListen: 'rc-1', onDisk: disk(replica), plan: { kind: 'promote-in-place', recoverWanted: 'rc-1' } },
  { case: 'promoted without a lease: stop, rewrite, start (which waits for the lease)', lifecycle: 'serving', hasPid: true, before: replica, desired: promoted, mayServe: false, onDisk: disk(replica), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'promoted while still starting: stop, rewrite, start', lifecycle: 'starting', hasPid: true, before: replica, desired: promoted, onDisk: disk(replica), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'promoted with its data moved: stop, rewrite, start', lifecycle: 'serving', hasPid: true, before: replica, desired: { ...promoted, dataPath: '/d2' }, onDisk: disk(replica), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'promoted with a new slot IP: stop, rewrite, start', lifecycle: 'serving', hasPid: true, before: replica, desired: { ...promoted, slotIp: '127.0.21.9' }, onDisk: disk(replica), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'promoted, but the config on disk is not what the replica was given (edited by hand): stop, rewrite, start', lifecycle: 'serving', hasPid: true, before: replica, desired: promoted, onDisk: [`${disk(replica)[0]}sync_log: 1\n`, disk(replica)[1]], plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'a recovery listener asked of a master promoted in place: restarted with it, not signalled (Cyrus SIGHUP bug)', lifecycle: 'serving', hasPid: true, reloaded: true, before: promoted, desired: promoted, recoverListen: 'rc-1', onDisk: disk(promoted), plan: { ...steps({ stop: 'config changed', configure: true, start: true }), recoverWanted: 'rc-1' } },
  { case: 'promoted while stopped: rewrite and start', lifecycle: 'stopped', before: replica, desired: promoted, onDisk: disk(replica), plan: steps({ configure: true, start: true }) },
  { case: 'a master asked to replicate to a moved-in replica too: reloaded, services untouched', lifecycle: 'serving', hasPid: true, before: master, desired: { ...master, epoch: 5, moveTargetIp: '127.0.23.1' }, onDisk: disk(master), plan: { kind: 'reload-sync' } },
  { case: 'the switch to the moved-in replica (new peer, no second channel): reloaded', lifecycle: 'serving', hasPid: true, before: { ...master, moveTargetIp: '127.0.23.1' }, desired: { ...master, epoch: 6, peerSlot: 's01-m3', peerIp: '127.0.23.1' }, onDisk: disk({ ...master, moveTargetIp: '127.0.23.1' }), plan: { kind: 'reload-sync' } },
  { case: 'a new replication target for a master promoted in place: restarted (Cyrus SIGHUP bug)', lifecycle: 'serving', hasPid: true, reloaded: true, before: master, desired: { ...master, epoch: 5, moveTargetIp: '127.0.23.1' }, onDisk: disk(master), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'a new replication target for a master still starting: stop, rewrite, start', lifecycle: 'starting', hasPid: true, before: master, desired: { ...master, epoch: 5, moveTargetIp: '127.0.23.1' }, onDisk: disk(master), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'a new replication target and a new slot IP: stop, rewrite, start', lifecycle: 'serving', hasPid: true, before: master, desired: { ...master, epoch: 5, slotIp: '127.0.21.9', moveTargetIp: '127.0.23.1' }, onDisk: disk(master), plan: steps({ stop: 'config changed', configure: true, start: true }) },
  { case: 'a config file missing on disk: rewritten and started', lifecycle: 'stopped', before: master, desired: master, onDisk: [disk(master)[0], ''], plan: steps({ configure: true, start: true }) },
];

describe('planConverge', () => {
  for (const row of ROWS) {
    it(row.case, () => {
      const input: ConvergeInput = {
        lifecycle: row.lifecycle,
        hasPid: row.hasPid ?? false,
        before: row.before,
        desired: row.desired,
        run: row.run ?? true,
        retry: row.retry ?? false,
        onDisk: row.onDisk,
        rendered: render(row.desired, row.desired.role === 'MASTER' && !!row.recoverListen),
        recoverListen: row.recoverListen ?? '',
        renderedBefore: row.before && render(row.before),
        mayServe: row.mayServe ?? true,
        reloaded: row.reloaded ?? false,
      };
      const plan = planConverge(input);
      const expected = Object.fromEntries(Object.entries(row.plan).filter(([, v]) => v !== undefined));
      const got = Object.fromEntries(Object.entries(plan).filter(([k]) => k in expected || (k === 'stop' && plan.kind === 'steps')));
      expect(got, plan.why).toEqual(expected);
      expect(plan.why.length).toBeGreaterThan(0);
    });
  }
});
