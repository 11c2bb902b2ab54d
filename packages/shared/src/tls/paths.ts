// Where a daemon or an operator finds its certificate: a PKI directory laid out by `slotctl pki` (ca.crt beside
// ROLE-NAME.crt and ROLE-NAME.key), or three explicit files. etcd's certificates come from a CA of their own, so
// beside them lies etcd-ca.crt instead: a member trusts that CA only, and so nothing of the cluster CA gets into etcd.
import { join } from 'node:path';

export interface TlsPaths {
  /** The CA's certificate: peers are trusted when their certificate is signed by it. */
  ca: string;
  cert: string;
  key: string;
}

/** The roles whose certificates the etcd CA signs: etcd members, and the clients etcd lets in (coordinators). */
export const ETCD_ROLES = ['etcd', 'etcd-client'] as const;

/** The file name of the CA certificate a holder of `role` trusts (and is signed by). */
export function caFileOf(role: string): string {
  return (ETCD_ROLES as readonly string[]).includes(role) ? 'etcd-ca.crt' : 'ca.crt';
}

export function tlsPaths(dir: string, identity: { role: string; name: string }): TlsPaths {
  const base = `${identity.role}-${identity.name}`;
  return { ca: join(dir, caFileOf(identity.role)), cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}
