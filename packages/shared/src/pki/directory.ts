// A PKI directory as `slotctl pki` writes it: ca.crt and ca.key (the cluster CA), etcd-ca.crt and etcd-ca.key (the
// etcd CA), ROLE-NAME.crt and ROLE-NAME.key for every certificate issued (agent-m1, coordinator-co, etcd-e1,
// etcd-client-co, operator-alice…). Keys are 0600, certificates 0644, the directory 0700; every file is replaced
// atomically, so a daemon that reloads its files never reads half of one, and a CA's files are never replaced at all.
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic, writeFileExclusive } from '../atomic-file.js';
import { ConfigError } from '../errors.js';
import { tlsPaths, type TlsPaths } from '../tls/paths.js';
import { type CaKind, caKindOf, createCa, describeCertificate, type Identity, issueCertificate, type IssueOptions, type Pem } from './certificates.js';

export const CA_CERT = 'ca.crt';
export const CA_KEY = 'ca.key';
export const ETCD_CA_CERT = 'etcd-ca.crt';
export const ETCD_CA_KEY = 'etcd-ca.key';

export interface CaPaths {
  cert: string;
  key: string;
}

/** Where each CA of `dir` lies. */
export function caPaths(dir: string, kind: CaKind): CaPaths {
  return kind === 'etcd' ? { cert: join(dir, ETCD_CA_CERT), key: join(dir, ETCD_CA_KEY) } : { cert: join(dir, CA_CERT), key: join(dir, CA_KEY) };
}

/** Whether anything has the name: a file, or a link (also one to nowhere, which a CA must not be written through). */
function taken(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function refuseExisting(dir: string, kind: CaKind): void {
  const paths = caPaths(dir, kind);
  if (!taken(paths.key) && !taken(paths.cert)) return;
  if (kind === 'etcd') throw new ConfigError(`an etcd CA already exists in ${dir}`, { hint: 'replacing it would invalidate every etcd member\'s and etcd client\'s certificate it signed' });
  const etcdMissing = !taken(caPaths(dir, 'etcd').key) && !taken(caPaths(dir, 'etcd').cert);
  throw new ConfigError(`a cluster CA already exists in ${dir}`, {
    hint: etcdMissing
      ? `it has no etcd CA yet: add one alone with slotctl pki init --etcd --dir ${dir}`
      : 'replacing it would invalidate every certificate it signed; use another --dir for a new cluster',
  });
}

/**
 * Writes a new CA of `kind` into `dir`, key first. Neither file replaces anything, not even one another process
 * wrote a moment ago: a CA replaced would silently orphan every certificate it signed.
 */
async function writeCa(dir: string, kind: CaKind, options: { days?: number; name?: string }): Promise<CaPaths> {
  const paths = caPaths(dir, kind);
  const ca = await createCa({ ...options, kind });
  try {
    await writeFileExclusive(paths.key, ca.key, 0o600);
    await writeFileExclusive(paths.cert, ca.cert, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuseExisting(dir, kind);
    throw err;
  }
  return paths;
}

/**
 * Creates the cluster CA and the etcd CA in `dir`; refuses when either exists (every certificate it signed would stop
 * working). A directory from before the etcd CA gets it from initEtcdCa.
 */
export async function initPki(dir: string, options: { days?: number; name?: string } = {}): Promise<{ cluster: CaPaths; etcd: CaPaths }> {
  refuseExisting(dir, 'cluster');
  refuseExisting(dir, 'etcd');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const cluster = await writeCa(dir, 'cluster', options);
  const etcd = await writeCa(dir, 'etcd', { days: options.days });
  return { cluster, etcd };
}

/** Adds the etcd CA alone to `dir` (a PKI directory made before there was one); refuses to replace one. */
export async function initEtcdCa(dir: string, options: { days?: number; name?: string } = {}): Promise<CaPaths> {
  refuseExisting(dir, 'etcd');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return writeCa(dir, 'etcd', options);
}

/** Reads a CA of a PKI directory (the cluster's by default), with a clear error when there is none. */
export function readCa(dir: string, kind: CaKind = 'cluster'): Pem {
  const paths = caPaths(dir, kind);
  try {
    return { cert: readFileSync(paths.cert, 'utf8'), key: readFileSync(paths.key, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (kind === 'etcd') throw new ConfigError(`no etcd CA in ${dir} (${code})`, { hint: `etcd's certificates come from a CA of their own; add it with: slotctl pki init --etcd --dir ${dir}` });
    throw new ConfigError(`no cluster CA in ${dir} (${code})`, { hint: `create one with: slotctl pki init --dir ${dir}` });
  }
}

/**
 * Issues a certificate for `identity` from the CA of its role in `dir` and writes it to `out` (default `dir`) as
 * ROLE-NAME.key and ROLE-NAME.crt, with that CA's certificate beside them (ca.crt, or etcd-ca.crt for etcd and
 * etcd-client) if it is not there; replaces an older one (a renewal). The key is written first: a daemon reloading in
 * between pairs the old certificate with a key it does not match, which its reload refuses, and it keeps what it had
 * until both are new.
 */
export async function issueToDirectory(dir: string, identity: Identity, options: IssueOptions & { out?: string } = {}): Promise<TlsPaths & { notAfter: Date }> {
  const ca = readCa(dir, caKindOf(identity.role));
  const out = options.out ?? dir;
  const paths = tlsPaths(out, identity);
  const pem = await issueCertificate(ca, identity, options);
  await mkdir(out, { recursive: true, mode: 0o700 });
  await writeFileAtomic(paths.key, pem.key, 0o600);
  await writeFileAtomic(paths.cert, pem.cert, 0o644);
  if (!existsSync(paths.ca)) await writeFileAtomic(paths.ca, ca.cert, 0o644);
  return { ...paths, notAfter: describeCertificate(pem.cert).notAfter };
}
