// Certificates for the harnesses (local and namespace clusters, benchmarks, the demo): a PKI directory per cluster,
// or one for the whole test run (SLOTCTL_TEST_PKI_DIR, made by the suite's global set-up), filled on demand by
// tools/pki-setup.ts. Every harness runs with mutual TLS like a real cluster; `insecure` ones are asked for by name.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execaSync } from 'execa';
import { CertificateFiles, tlsPaths } from '@slotctl/shared';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SETUP = join(ROOT, 'tools', 'pki-setup.ts');

/** The identity the harness's own Admin client and slotctl calls use. */
export const HARNESS_OPERATOR = { role: 'admin', name: 'harness' } as const;
/** The coordinator's. */
export const HARNESS_COORDINATOR = { role: 'coordinator', name: 'co' } as const;
/** The one the harness coordinator shows etcd (signed by the etcd CA: etcd refuses the coordinator's own). */
export const HARNESS_ETCD_CLIENT = { role: 'etcd-client', name: 'co' } as const;

/**
 * Makes sure `dir` holds the CAs and a certificate for each identity (`ROLE:NAME`), issuing what is missing. The
 * set-up runs under flock(1) on DIR/.pki-setup.lock: test files running side by side share the run's directory, and
 * two of them issuing one certificate at once could leave one's key beside the other's certificate (the kernel drops
 * the lock of a killed holder, so nothing stale is left to clear).
 */
export function ensureCertificates(dir: string, identities: readonly { role: string; name: string }[]): void {
  const missing = identities.filter((id) => !existsSync(tlsPaths(dir, id).cert)).map((id) => `${id.role}:${id.name}`);
  const cas = [join(dir, 'ca.crt'), ...identities.map((id) => tlsPaths(dir, id).ca)];
  if (missing.length === 0 && cas.every((ca) => existsSync(ca))) return;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  execaSync('flock', ['--timeout', '60', join(dir, '.pki-setup.lock'), process.execPath, '--import', 'tsx', SETUP, dir, ...missing], { cwd: ROOT });
}

/** The flags that hand a process its certificate files. */
export function tlsArgs(dir: string, id: { role: string; name: string }): string[] {
  const p = tlsPaths(dir, id);
  return ['--tls-ca', p.ca, '--tls-cert', p.cert, '--tls-key', p.key];
}

/** The same as settings (flag name → file), for a daemon's flags or its --config file. */
export function tlsSettings(dir: string, id: { role: string; name: string }): Record<'tls-ca' | 'tls-cert' | 'tls-key', string> {
  const p = tlsPaths(dir, id);
  return { 'tls-ca': p.ca, 'tls-cert': p.cert, 'tls-key': p.key };
}

/** The harness operator's certificate files, for an in-process Admin client. */
export function harnessCertificates(dir: string): CertificateFiles {
  ensureCertificates(dir, [HARNESS_OPERATOR]);
  return new CertificateFiles(tlsPaths(dir, HARNESS_OPERATOR));
}

/** The environment that hands a tool (operation driver, admin-move) an operator's certificate. */
export function tlsEnv(dir: string | undefined, id: { role: string; name: string } = HARNESS_OPERATOR): Record<string, string> {
  if (!dir) return { SLOTCTL_INSECURE: '1' };
  ensureCertificates(dir, [id]);
  const p = tlsPaths(dir, id);
  return { SLOTCTL_TLS_CA: p.ca, SLOTCTL_TLS_CERT: p.cert, SLOTCTL_TLS_KEY: p.key };
}

/** A tool's operator certificate from its environment (see tlsEnv); undefined when SLOTCTL_INSECURE=1. */
export function operatorFromEnv(): CertificateFiles | undefined {
  if (process.env.SLOTCTL_INSECURE === '1') return undefined;
  const { SLOTCTL_TLS_CA: ca, SLOTCTL_TLS_CERT: cert, SLOTCTL_TLS_KEY: key } = process.env;
  if (!ca || !cert || !key) throw new Error('no certificate: set SLOTCTL_TLS_CA, SLOTCTL_TLS_CERT and SLOTCTL_TLS_KEY (or SLOTCTL_INSECURE=1)');
  return new CertificateFiles({ ca, cert, key });
}
