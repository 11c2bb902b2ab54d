// A PKI directory as `slotctl pki` writes it: ca.crt and ca.key (the cluster CA), ROLE-NAME.crt and ROLE-NAME.key
// for every certificate issued (agent-m1, coordinator-co, etcd-e1, operator-alice…). Keys are 0600, certificates 0644, the
// directory 0700; every file is replaced atomically, so a daemon that reloads its files never reads half of one.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { ConfigError } from '../errors.js';
import { tlsPaths, type TlsPaths } from '../tls/paths.js';
import { createCa, describeCertificate, type Identity, issueCertificate, type IssueOptions, type Pem } from './certificates.js';

export const CA_CERT = 'ca.crt';
export const CA_KEY = 'ca.key';

/** Creates the cluster CA in `dir`; refuses to replace one (every certificate it signed would stop working). */
export async function initPki(dir: string, options: { days?: number; name?: string } = {}): Promise<{ cert: string; key: string }> {
  const paths = { cert: join(dir, CA_CERT), key: join(dir, CA_KEY) };
  if (existsSync(paths.key) || existsSync(paths.cert)) {
    throw new ConfigError(`a cluster CA already exists in ${dir}`, { hint: 'replacing it would invalidate every certificate it signed; use another --dir for a new cluster' });
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa(options);
  await writeFileAtomic(paths.key, ca.key, 0o600);
  await writeFileAtomic(paths.cert, ca.cert, 0o644);
  return paths;
}

/** Reads the CA of a PKI directory, with a clear error when there is none. */
export function readCa(dir: string): Pem {
  try {
    return { cert: readFileSync(join(dir, CA_CERT), 'utf8'), key: readFileSync(join(dir, CA_KEY), 'utf8') };
  } catch (err) {
    throw new ConfigError(`no cluster CA in ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { hint: `create one with: slotctl pki init --dir ${dir}` });
  }
}

/**
 * Issues a certificate for `identity` from the CA in `dir` and writes it to `out` (default `dir`) as ROLE-NAME.key
 * and ROLE-NAME.crt, with the CA certificate beside them if it is not there; replaces an older one (a renewal). The
 * key is written first: a daemon reloading in between pairs the old certificate with a key it does not match, which
 * its reload refuses, and it keeps what it had until both are new.
 */
export async function issueToDirectory(dir: string, identity: Identity, options: IssueOptions & { out?: string } = {}): Promise<TlsPaths & { notAfter: Date }> {
  const ca = readCa(dir);
  const out = options.out ?? dir;
  const paths = tlsPaths(out, identity);
  const pem = await issueCertificate(ca, identity, options);
  await mkdir(out, { recursive: true, mode: 0o700 });
  await writeFileAtomic(paths.key, pem.key, 0o600);
  await writeFileAtomic(paths.cert, pem.cert, 0o644);
  if (!existsSync(paths.ca)) await writeFileAtomic(paths.ca, ca.cert, 0o644);
  return { ...paths, notAfter: describeCertificate(pem.cert).notAfter };
}
