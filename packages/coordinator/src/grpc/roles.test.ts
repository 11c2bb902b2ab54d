import { describe, expect, it } from 'vitest';
import { PermissionError, loadContract } from '@slotctl/shared';
import { ADMIN_ACCESS, INSECURE_CALLER, callerOf, describeAccess, mayCall, requireRole, roleNeeded } from './roles.js';

const call = (subject?: Record<string, string>) => ({ getAuthContext: () => (subject ? { sslPeerCertificate: { subject } } : {}) });

describe('Admin roles', () => {
  it('ranks reader < operator < admin; other roles (an agent) and none may do nothing', () => {
    const table = (['reader', 'operator', 'admin', 'agent', 'coordinator', ''] as const).map((role) => [role, (['reader', 'operator', 'admin'] as const).map((need) => mayCall({ name: 'x', role }, need))]);
    expect(table).toEqual([
      ['reader', [true, false, false]],
      ['operator', [true, true, false]],
      ['admin', [true, true, true]],
      ['agent', [false, false, false]],
      ['coordinator', [false, false, false]],
      ['', [false, false, false]],
    ]);
  });

  it('knows the caller by its verified certificate; without TLS everyone is the insecure caller', () => {
    expect(callerOf(call({ CN: 'alice', OU: 'operator' }), true)).toEqual({ name: 'alice', role: 'operator' });
    expect(callerOf(call(), true)).toEqual({ name: '(no certificate of the cluster CA)', role: '' });
    expect(callerOf(call({ CN: 'alice', OU: 'reader' }), false)).toBe(INSECURE_CALLER);
  });

  it('refuses with the role needed and how to get it', () => {
    expect(() => requireRole({ name: 'rita', role: 'reader' }, 'operator', 'Switchover')).toThrow(PermissionError);
    expect(() => requireRole({ name: 'rita', role: 'reader' }, 'operator', 'Switchover')).toThrow('rita has role reader: Switchover needs role operator');
    expect(() => requireRole({ name: 'alice', role: 'operator' }, 'operator', 'Switchover')).not.toThrow();
  });
});

describe('what each Admin call needs', () => {
  it('reads the request: a dry run only looks, a rebalance plan changes only with apply, a forced failover is an admin\'s', () => {
    expect(roleNeeded(ADMIN_ACCESS.Switchover, { store: 's1', dryRun: true })).toBe('reader');
    expect(roleNeeded(ADMIN_ACCESS.Switchover, { store: 's1' })).toBe('operator');
    expect(roleNeeded(ADMIN_ACCESS.Plan, { kind: 'rebalance' })).toBe('reader');
    expect(roleNeeded(ADMIN_ACCESS.Plan, { kind: 'rebalance', apply: true })).toBe('operator');
    expect(roleNeeded(ADMIN_ACCESS.FailoverMachine, { machine: 'm1' })).toBe('operator');
    expect(roleNeeded(ADMIN_ACCESS.FailoverMachine, { machine: 'm1', force: true })).toBe('admin');
    expect(roleNeeded(ADMIN_ACCESS.FailoverMachine, { machine: 'm1', force: true, dryRun: true })).toBe('reader');
    expect(roleNeeded(ADMIN_ACCESS.ApplyCluster, { text: '' })).toBe('admin');
    expect(roleNeeded(ADMIN_ACCESS.Status, {})).toBe('reader');
    // every Admin RPC of the contract has a row (a new one cannot be served without saying who may call it)
    const rpcs = Object.keys(loadContract().slotctl.v1.Admin.service);
    expect(rpcs.filter((rpc) => !(rpc in ADMIN_ACCESS))).toEqual([]);
    expect(describeAccess(ADMIN_ACCESS.FailoverMachine)).toBe('operator; reader with dry_run; admin with force');
  });
});
