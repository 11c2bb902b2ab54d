// Who may call what on the Admin service. A caller's role is the OU of its client certificate: a `reader` sees, an
// `operator` runs the day-to-day moves, an `admin` changes what the cluster is or overrides its safety checks. Each
// role can do what the ones below it can. Without TLS (--insecure) nobody is identified: every call is allowed and
// recorded as the caller "insecure", which status shows as a problem.
import { PermissionError, peerIdentity, type Identity } from '@slotctl/shared';

export const ROLES = ['reader', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface Caller {
  /** The certificate's name, or 'insecure'. */
  name: string;
  /** The certificate's role as given (may be one that is not an operator role, e.g. agent). */
  role: string;
}

export const INSECURE_CALLER: Caller = { name: 'insecure', role: 'admin' };

const rank = (role: string): number => ROLES.indexOf(role as Role);

/** The caller of an Admin call: its certificate's identity, or the insecure caller when the link has no TLS. */
export function callerOf(call: Parameters<typeof peerIdentity>[0], secure: boolean): Caller {
  if (!secure) return INSECURE_CALLER;
  const id: Identity | undefined = peerIdentity(call);
  // grpc-js gives an identity only for a certificate the cluster CA signed (the handshake lets others through so
  // that the refusal is recorded): none means no certificate, another CA's, or one without slotctl's subject fields
  return id ? { name: id.name, role: id.role } : { name: '(no certificate of the cluster CA)', role: '' };
}

export function mayCall(caller: Caller, need: Role): boolean {
  const have = rank(caller.role);
  return have >= 0 && have >= rank(need);
}

/** Throws the refusal a caller without the role gets: it names the role needed and how to get it. */
export function requireRole(caller: Caller, need: Role, what: string): void {
  if (mayCall(caller, need)) return;
  const has = caller.role ? `has role ${caller.role}` : 'has no role';
  throw new PermissionError(`${caller.name} ${has}: ${what} needs role ${need}`, {
    hint: `an admin issues a certificate with that role: slotctl pki issue operator ${caller.name} --role ${need}`,
  });
}

/**
 * What a call needs: `role`, unless the request only looks — `readerIf` names the field that makes it a dry run,
 * `changesOnlyIf` the one without which it changes nothing — or overrides a safety check (`adminIf`).
 */
export interface Access {
  role: Role;
  readerIf?: string;
  changesOnlyIf?: string;
  adminIf?: string;
}

/** Every Admin RPC and what it needs (the table is the check; docs/ARCHITECTURE.md draws its column from it). */
export const ADMIN_ACCESS = {
  Status: { role: 'reader' },
  ListMachines: { role: 'reader' },
  ListStores: { role: 'reader' },
  ListEvents: { role: 'reader' },
  ExportCluster: { role: 'reader' },
  ListSlots: { role: 'reader' },
  ListOperations: { role: 'reader' },
  GetOperation: { role: 'reader' },
  ListAtRisk: { role: 'reader' },
  CleanupStatus: { role: 'reader' },
  DiskStatus: { role: 'reader' },
  Plan: { role: 'operator', changesOnlyIf: 'apply' },
  Switchover: { role: 'operator', readerIf: 'dryRun' },
  MoveReplica: { role: 'operator', readerIf: 'dryRun' },
  DrainMachine: { role: 'operator', readerIf: 'dryRun' },
  UndrainMachine: { role: 'operator' },
  CancelOperation: { role: 'operator' },
  RunCleanup: { role: 'operator' },
  SetSlotRun: { role: 'operator' },
  ReplaySlot: { role: 'operator' },
  FailoverMachine: { role: 'operator', readerIf: 'dryRun', adminIf: 'force' },
  Recover: { role: 'admin', readerIf: 'dryRun' },
  RetireMachine: { role: 'admin', readerIf: 'dryRun' },
  ApplyCluster: { role: 'admin', readerIf: 'dryRun' },
} as const satisfies Record<string, Access>;

export type AdminRpc = keyof typeof ADMIN_ACCESS;

/** The role one call needs, from its request. */
export function roleNeeded(access: Access, request: unknown): Role {
  const set = (field: string | undefined) => field !== undefined && Boolean((request as Record<string, unknown> | null)?.[field]);
  if (set(access.readerIf)) return 'reader';
  if (access.changesOnlyIf && !set(access.changesOnlyIf)) return 'reader';
  if (set(access.adminIf)) return 'admin';
  return access.role;
}

/** An access rule in words (the docs' column). */
export function describeAccess(access: Access): string {
  const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return [
    access.role,
    access.readerIf ? `reader with ${snake(access.readerIf)}` : '',
    access.changesOnlyIf ? `reader without ${snake(access.changesOnlyIf)}` : '',
    access.adminIf ? `admin with ${snake(access.adminIf)}` : '',
  ].filter(Boolean).join('; ');
}
