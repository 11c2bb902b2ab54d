// How a process finds its certificate from its flags: --tls-dir (a directory laid out by `slotctl pki`), or the three
// files named one by one (--tls-ca, --tls-cert, --tls-key), or --insecure, which must be asked for by name: there is
// no default that runs in the clear.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { CertificateFiles, DEFAULT_RELOAD_MS, expectIdentity, type Identity } from './credentials.js';
import { type TlsPaths, tlsPaths } from './paths.js';

export interface TlsFlags {
  tlsDir?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
}

/** The help text of the flags, shared by every binary. */
export const TLS_FLAG_HELP = {
  tlsDir: 'directory with ca.crt and this process\'s ROLE-NAME.crt/.key, as `slotctl pki` writes them',
  tlsCa: 'the cluster CA certificate (overrides --tls-dir\'s ca.crt)',
  tlsCert: 'this process\'s certificate (overrides the one found in --tls-dir)',
  tlsKey: 'its private key, mode 0600 (overrides the one found in --tls-dir)',
  insecure: 'no TLS: every link in the clear and no identities (tests of old setups only; shown as a problem in status)',
} as const;

/** The roles an operator's certificate (the CLI's) may have. */
export const OPERATOR_CERTIFICATE_ROLES = ['reader', 'operator', 'admin'] as const;

export interface Certificates {
  files: CertificateFiles;
  identity: Identity;
}

/** Paths from the flags: `want` picks the certificate in --tls-dir (a name, or any of some roles). */
export function resolveTlsPaths(flags: TlsFlags, want: { role: string; name: string } | { roles: readonly string[] }): TlsPaths {
  if (flags.tlsCert || flags.tlsKey || flags.tlsCa) {
    if (!(flags.tlsCert && flags.tlsKey && (flags.tlsCa || flags.tlsDir))) {
      throw new ConfigError('--tls-cert, --tls-key and --tls-ca (or --tls-dir for the CA) go together', { hint: 'name all three, or give --tls-dir alone' });
    }
    return { ca: flags.tlsCa ?? join(flags.tlsDir!, 'ca.crt'), cert: flags.tlsCert, key: flags.tlsKey };
  }
  if (!flags.tlsDir) throw new ConfigError('no certificate: every link is mutual TLS', { hint: 'give --tls-dir (see slotctl pki --help), or --insecure to run without TLS' });
  if ('name' in want) return tlsPaths(flags.tlsDir, want);
  let entries: string[];
  try {
    entries = readdirSync(flags.tlsDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    const hint = want.roles.includes('coordinator') ? 'issue one with: slotctl pki issue coordinator HOST --dir PKI-DIR --out DIR' : `every call is mutual TLS: ask your cluster's admin for a certificate (slotctl pki issue operator NAME --role reader --dir PKI-DIR --out ${flags.tlsDir}), or name another directory with --tls-dir`;
    throw new ConfigError(`no certificate: cannot read the certificate directory ${flags.tlsDir} (${code})`, { hint });
  }
  const found = entries.filter((f) => f.endsWith('.crt') && want.roles.some((r) => f.startsWith(`${r}-`))).sort();
  if (found.length === 0) {
    throw new ConfigError(`no ${want.roles.join(' or ')} certificate in ${flags.tlsDir}`, { hint: `ask your cluster's admin for one: slotctl pki issue ${want.roles.includes('coordinator') ? 'coordinator HOST' : 'operator NAME --role reader'} --dir PKI-DIR --out ${flags.tlsDir}` });
  }
  if (found.length > 1) throw new ConfigError(`several certificates in ${flags.tlsDir}: ${found.join(', ')}`, { hint: 'name one with --tls-cert and --tls-key' });
  const base = found[0]!.slice(0, -'.crt'.length);
  return { ca: join(flags.tlsDir, 'ca.crt'), cert: join(flags.tlsDir, `${base}.crt`), key: join(flags.tlsDir, `${base}.key`) };
}

/**
 * The certificates of a process from its flags, checked (undefined with --insecure): `want` is the identity it must
 * have (an agent is its machine) or the roles it may have (an operator, a coordinator).
 */
export function certificatesFromFlags(
  flags: TlsFlags,
  want: { role: string; name: string } | { roles: readonly string[] },
  hooks: { onReload?: (id: Identity, notAfter: Date) => void; onError?: (err: Error) => void; reloadMs?: number } = {},
): Certificates | undefined {
  if (flags.insecure) {
    if (flags.tlsDir || flags.tlsCert) throw new ConfigError('--insecure and a certificate were both given', { hint: 'drop one of them' });
    return undefined;
  }
  const paths = resolveTlsPaths(flags, want);
  const expect = 'name' in want ? expectIdentity(want.role, want.name) : expectIdentity(want.roles);
  const files = new CertificateFiles(paths, { expect, reloadMs: hooks.reloadMs ?? DEFAULT_RELOAD_MS, onReload: hooks.onReload, onError: hooks.onError });
  return { files, identity: files.identity };
}
