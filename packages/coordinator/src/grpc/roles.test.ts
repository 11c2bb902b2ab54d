import { describe, expect, it } from 'vitest';
import { PermissionError } from '@slotctl/shared';
import { INSECURE_CALLER, callerOf, mayCall, requireRole } from './roles.js';

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
