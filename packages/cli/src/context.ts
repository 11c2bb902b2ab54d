// What every command file is handed or shares: the exit codes, the way a verb reaches the coordinator (a client
// built from the global options, closed afterwards), JSON output, and the checks of arguments several verbs repeat.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type CertificateFiles, OPERATOR_CERTIFICATE_ROLES, type TlsFlags, ValidationError, certificatesFromFlags, parseDuration } from '@slotctl/shared';
import { Admin } from './admin-client.js';

export const EXIT = { ok: 0, error: 1, usage: 2, unhealthy: 3 } as const;

/** Runs one verb's calls with a fresh Admin client and closes it, also when the verb throws. */
export type WithAdmin = <T>(fn: (a: Admin) => Promise<T>) => Promise<T>;

export interface GlobalOptions extends TlsFlags {
  coordinator: string;
  rpcTimeout: string;
}

/** Where an operator's certificate is looked for when --tls-dir is not given. */
export const DEFAULT_TLS_DIR = join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'slotctl');

/** The operator's certificate from the global options (undefined with --insecure), read once per process. */
let certificates: { files: CertificateFiles | undefined } | undefined;
export function operatorCertificates(opts: GlobalOptions): CertificateFiles | undefined {
  certificates ??= { files: certificatesFromFlags({ ...opts, tlsDir: opts.tlsDir ?? (opts.insecure || opts.tlsCert ? undefined : DEFAULT_TLS_DIR) }, { roles: OPERATOR_CERTIFICATE_ROLES })?.files };
  return certificates.files;
}

/** The options are read when a verb runs, not when it is registered: commander has parsed them only by then. */
export function adminRunner(program: Command): WithAdmin {
  return async (fn) => {
    const opts = program.opts<GlobalOptions>();
    const a = new Admin(opts.coordinator, parseDuration(opts.rpcTimeout, '--rpc-timeout'), operatorCertificates(opts));
    try {
      return await fn(a);
    } finally {
      a.close();
    }
  };
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function positive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new ValidationError(`${what} "${text}" is not a positive whole number`);
  return n;
}

/** A file named on the command line, "-" for stdin (a cluster description for apply or an offline layout). */
export function readFileArgument(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new ValidationError(`cannot read ${file}: ${(err as Error).message}`);
  }
}
