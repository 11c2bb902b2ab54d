// Where a daemon or an operator finds its certificate: a PKI directory laid out by `slotctl pki` (ca.crt beside
// ROLE-NAME.crt and ROLE-NAME.key), or three explicit files.
import { join } from 'node:path';

export interface TlsPaths {
  /** The cluster CA's certificate: peers are trusted when their certificate is signed by it. */
  ca: string;
  cert: string;
  key: string;
}

export function tlsPaths(dir: string, identity: { role: string; name: string }): TlsPaths {
  const base = `${identity.role}-${identity.name}`;
  return { ca: join(dir, 'ca.crt'), cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}
