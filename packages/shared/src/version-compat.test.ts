import { describe, expect, it } from 'vitest';
import { agentVersionProblem, parseVersion } from './version-compat.js';

describe('agent version compatibility', () => {
  it('accepts the same minor version and the one before, whatever the patch', () => {
    expect(agentVersionProblem('0.4.0', '0.4.2')).toBeUndefined();
    expect(agentVersionProblem('0.4.9', '0.4.2')).toBeUndefined();
    expect(agentVersionProblem('0.3.7', '0.4.0')).toBeUndefined();
    expect(agentVersionProblem('1.0.0-rc.1', '1.0.0')).toBeUndefined();
  });

  it('refuses two minors behind, a newer agent, another major and garbage, saying which way to upgrade', () => {
    expect(agentVersionProblem('0.2.0', '0.4.0')).toMatchObject({ reason: 'agent 0.2.0 and coordinator 0.4.0: the agent is more than one minor version behind', hint: expect.stringContaining('upgrade the agent to 0.4') });
    expect(agentVersionProblem('0.5.0', '0.4.0')?.hint).toMatch(/coordinators first/);
    expect(agentVersionProblem('1.4.0', '0.4.0')?.reason).toMatch(/newer major/);
    expect(agentVersionProblem('0.4.0', '1.0.0')?.reason).toMatch(/another major/);
    expect(agentVersionProblem('', '0.4.0')?.reason).toBe('agent version "" is not a version (X.Y.Z)');
    expect(agentVersionProblem(`0.4.0;${'x'.repeat(100)}`, '0.4.0')?.reason.length).toBeLessThan(90);
  });

  it('parses X.Y.Z with an optional pre-release or build suffix only', () => {
    expect(parseVersion('10.20.30')).toEqual({ major: 10, minor: 20, patch: 30 });
    expect(parseVersion('1.2')).toBeUndefined();
    expect(parseVersion('1.2.3 ')).toBeUndefined();
    expect(() => agentVersionProblem('1.0.0', 'dev')).toThrow(/build defect/);
  });
});
