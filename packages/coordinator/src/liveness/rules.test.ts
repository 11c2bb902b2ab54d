import { describe, expect, it } from 'vitest';
import { AGENT_RECONNECT_MAX_MS, AGENT_RECONNECT_TO_NEW_LEADER_MS, LIVENESS_RULES, RESTART_HOLD_MS, decideLiveness, holdMs, startHoldMs, type LivenessSnapshot } from './rules.js';

const config = { heartbeatIntervalMs: 1000, leaseMs: 5000 };
const decide = (s: LivenessSnapshot) => decideLiveness(s, config);

describe('liveness rules', () => {
  it('keeps an up machine up while heartbeats arrive', () => {
    expect(decide({ state: 'up', silenceMs: 1999, heard: true, everHeard: true })).toBeUndefined();
  });

  it('marks a machine suspect after two missed intervals, down when the lease and its margin (a fifth) expired', () => {
    expect(decide({ state: 'up', silenceMs: 2000, heard: true, everHeard: true })).toMatchObject({ to: 'suspect', rule: 'heartbeats-missed' });
    expect(decide({ state: 'suspect', silenceMs: 5999, heard: true, everHeard: true })).toBeUndefined();
    expect(decide({ state: 'suspect', silenceMs: 6000, heard: true, everHeard: true })).toMatchObject({ to: 'down', rule: 'lease-expired' });
  });

  it('declares a machine whose agent said it was restarting down only after the restart hold too', () => {
    // suspect as usual (the restart is visible), down only after lease + hold + margin
    expect(decide({ state: 'up', silenceMs: 2000, heard: true, everHeard: true, holdMs: 3000 })).toMatchObject({ to: 'suspect' });
    expect(decide({ state: 'suspect', silenceMs: 8999, heard: true, everHeard: true, holdMs: 3000 })).toBeUndefined();
    const down = decide({ state: 'suspect', silenceMs: 9000, heard: true, everHeard: true, holdMs: 3000 });
    expect(down).toMatchObject({ to: 'down', rule: 'lease-expired' });
    expect(down!.reason).toMatch(/restart hold of 3000 ms/);
  });

  it('brings a lease shorter than the default up to it while slots start (the start hold), and no more than the restart hold', () => {
    expect(startHoldMs(2000)).toBe(3000);
    expect(startHoldMs(4000)).toBe(1000);
    expect(startHoldMs(5000)).toBe(0);
    expect(startHoldMs(8000)).toBe(0);
    expect(startHoldMs(1000)).toBe(RESTART_HOLD_MS); // never longer than the hold a new coordinator's grace covers
    expect(holdMs(2000, 'starting')).toBe(3000);
    expect(holdMs(5000, 'restarting')).toBe(RESTART_HOLD_MS);
    expect(holdMs(2000, undefined)).toBe(0);
    const down = decideLiveness({ state: 'suspect', silenceMs: 5500, heard: true, everHeard: true, holdMs: 3000, holdWhy: 'starting' }, { heartbeatIntervalMs: 250, leaseMs: 2000 });
    expect(down).toMatchObject({ to: 'down', rule: 'lease-expired' });
    expect(down!.reason).toMatch(/^lease of 2000 ms \(\+ a start hold of 3000 ms: its agent said it was starting slots\) \(\+ 500 ms margin\)/);
  });

  it('keeps the restart hold within the grace of any coordinator that starts meanwhile (it keeps no record of the hold)', () => {
    expect(RESTART_HOLD_MS).toBeLessThanOrEqual(AGENT_RECONNECT_TO_NEW_LEADER_MS);
    expect(RESTART_HOLD_MS).toBeLessThanOrEqual(AGENT_RECONNECT_MAX_MS);
  });

  it('goes straight to down when a whole lease passed between two looks', () => {
    expect(decide({ state: 'up', silenceMs: 7000, heard: true, everHeard: true })).toMatchObject({ to: 'down', rule: 'lease-expired' });
  });

  it('brings a suspect or down machine back up on a heartbeat, and says which', () => {
    expect(decide({ state: 'suspect', silenceMs: 10, heard: true, everHeard: true })).toMatchObject({ to: 'up', reason: 'the agent is heard (hello or heartbeat)' });
    expect(decide({ state: 'down', silenceMs: 10, heard: true, everHeard: true })?.reason).toMatch(/heard again after the machine was down/);
  });

  it('declares a never-heard machine down only after a whole lease and margin (the restart grace period)', () => {
    expect(decide({ state: 'unknown', silenceMs: 5999, heard: false, everHeard: true })).toBeUndefined();
    expect(decide({ state: 'unknown', silenceMs: 6000, heard: false, everHeard: true })).toMatchObject({ to: 'down', rule: 'never-heard' });
    // a machine that was up before a coordinator restart gets the same grace, and is not made suspect meanwhile
    expect(decide({ state: 'up', silenceMs: 4000, heard: false, everHeard: true })).toBeUndefined();
    expect(decide({ state: 'up', silenceMs: 6000, heard: false, everHeard: true })).toMatchObject({ to: 'down' });
  });

  it('leaves a machine whose agent never connected unknown, however long: nothing of it ever served', () => {
    expect(decide({ state: 'unknown', silenceMs: 600_000, heard: false, everHeard: false })).toBeUndefined();
    expect(decide({ state: 'unknown', silenceMs: 10, heard: true, everHeard: true })).toMatchObject({ to: 'up' });
  });

  it('has a reason on every rule and no rule that leaves a state for itself', () => {
    for (const rule of LIVENESS_RULES) {
      expect(rule.from).not.toContain(rule.to);
      expect(rule.reason({ state: rule.from[0]!, silenceMs: 1, heard: true, everHeard: true }, config)).not.toBe('');
    }
  });
});
