// The etcd client of a coordinator from its flags: mutual TLS with etcd, showing an etcd-client certificate of the
// etcd CA — by default etcd-ca.crt and the one etcd-client-HOST.crt/.key in --tls-dir (`slotctl pki issue
// etcd-client`), unless --etcd-* name others. Never the coordinator's own certificate: etcd lets in whatever its CA
// signed, so it trusts only the etcd CA, and a certificate of the cluster CA (every mail host has one) is refused.
// Plain http:// endpoints only with --insecure, by name.
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, GRPCDeadlineExceededError, isRecoverableError, type IOptions } from 'etcd3';
import { ConfigError, expectIdentity, loadCertificateSet, resolveTlsPaths, type TlsFlags, type TlsPaths } from '@slotctl/shared';

export interface EtcdFlags {
  etcdEndpoints?: string;
  etcdPrefix: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

const ETCD_CLIENT = 'etcd-client';

/**
 * etcd3's fault handling, made to hold through an election of etcd's own leader. Its defaults set a member aside for
 * 5 s after three recoverable errors in a row, counting etcd's answers while it elects a leader ("etcdserver: no
 * leader") as the member's failures, and a call retried after its deadline had passed failed at once on every other
 * member and counted against them too: a routine election with writes in flight set every member aside for 5 s,
 * longer than what was left of the leader's lease (TTL less its margin and up to TTL/8 since the last keepalive: about
 * 4-4.65 s at 5 s), and the leader stepped down (defect 18). Here only a member's own failure counts (memberFailed),
 * a member set aside is asked again after 1 s, and a call whose deadline passed is not retried by the client: its
 * caller retries on its own schedule (writer, keepalive, campaign).
 */
export function memberFailed(err: Error): boolean {
  if (!isRecoverableError(err) || err.message.includes('etcdserver:')) return false;
  if (!(err instanceof GRPCDeadlineExceededError)) return true; // refused, unreachable, reset
  // hung: the deadline passed while the call waited on this member — not one that had passed before it was sent
  // (grpc-js: "Deadline exceeded after 0.000s"), as happens to a call that waited on another member first
  const waited = /Deadline exceeded after (\d+(?:\.\d+)?)s/.exec(err.message);
  return !waited || Number(waited[1]) >= 0.1;
}
const FAULT_HANDLING = {
  host: () => circuitBreaker(handleWhen(memberFailed), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
  global: retry(handleWhen((err) => isRecoverableError(err) && !(err instanceof GRPCDeadlineExceededError)), { maxAttempts: 3 }),
};

/** The options of every coordinator's etcd client. A new leader reads the cluster in pages of thousands of rows (load.ts): more than gRPC's 4 MB default. */
export const ETCD_CLIENT_OPTIONS = {
  dialTimeout: 2000,
  grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  faultHandling: FAULT_HANDLING,
} satisfies Partial<IOptions>;

export function etcdClientFromFlags(flags: EtcdFlags & TlsFlags): Etcd3 {
  const endpoints = (flags.etcdEndpoints ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new ConfigError('--store etcd needs --etcd-endpoints', { hint: 'name every etcd member: --etcd-endpoints https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379' });
  if (!/^\/[A-Za-z0-9._/-]*$/.test(flags.etcdPrefix)) throw new ConfigError(`--etcd-prefix ${JSON.stringify(flags.etcdPrefix)} is not a key prefix`, { hint: 'letters, digits, . _ - and /, starting with /' });
  for (const e of endpoints) if (!/^https?:\/\/[^/\s]+$/.test(e)) throw new ConfigError(`etcd endpoint ${JSON.stringify(e)} is not a URL`, { hint: 'https://HOST:PORT' });
  const plain = endpoints.filter((e) => e.startsWith('http://'));
  if (plain.length && !flags.insecure) throw new ConfigError(`etcd endpoint ${plain[0]} is in the clear`, { hint: 'use https:// (etcd with --client-cert-auth; certificates: slotctl pki --help), or --insecure for a test setup' });
  if (plain.length !== endpoints.length && plain.length) throw new ConfigError('some etcd endpoints are https:// and some http://', { hint: 'one kind for all' });
  if (plain.length) return new Etcd3({ hosts: endpoints, ...ETCD_CLIENT_OPTIONS });
  const paths = etcdTlsPaths(flags);
  let set: ReturnType<typeof loadCertificateSet>;
  try {
    // checked here, not at the first call: a wrong certificate would otherwise be a connection etcd keeps refusing
    set = loadCertificateSet(paths, expectIdentity(ETCD_CLIENT), { issueHint: `etcd lets in only certificates of the etcd CA; ${issueHint(flags)}` });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`the certificate for etcd: ${err.message}`, { hint: err.hint, cause: err });
  }
  return new Etcd3({ hosts: endpoints, ...ETCD_CLIENT_OPTIONS, credentials: { rootCertificate: set.ca, certChain: set.cert, privateKey: set.key } });
}

/**
 * The files the coordinator shows etcd and checks it by: --etcd-ca, --etcd-cert and --etcd-key where given, the rest
 * from --tls-dir (etcd-ca.crt, and the one etcd-client-*.crt with its key).
 */
export function etcdTlsPaths(flags: EtcdFlags & TlsFlags): TlsPaths {
  if (Boolean(flags.etcdCert) !== Boolean(flags.etcdKey)) throw new ConfigError('--etcd-cert and --etcd-key go together', { hint: 'name both, or neither to take the etcd-client certificate in --tls-dir' });
  if (flags.etcdCa && flags.etcdCert && flags.etcdKey) return { ca: flags.etcdCa, cert: flags.etcdCert, key: flags.etcdKey };
  const dir = flags.tlsDir;
  if (!dir) {
    throw new ConfigError('no certificate for etcd: give --tls-dir holding etcd-ca.crt and etcd-client-HOST.crt/.key, or --etcd-ca, --etcd-cert and --etcd-key', { hint: issueHint(flags) });
  }
  const ca = flags.etcdCa ?? join(dir, 'etcd-ca.crt');
  if (flags.etcdCert && flags.etcdKey) return { ca, cert: flags.etcdCert, key: flags.etcdKey };
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new ConfigError(`no certificate for etcd: cannot read ${dir} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { hint: issueHint(flags) });
  }
  const found = entries.filter((f) => f.startsWith(`${ETCD_CLIENT}-`) && f.endsWith('.crt')).sort();
  if (found.length === 0) throw new ConfigError(`no etcd-client certificate in ${dir}: etcd lets in only certificates of the etcd CA, not this coordinator's own`, { hint: issueHint(flags) });
  if (found.length > 1) throw new ConfigError(`several etcd-client certificates in ${dir}: ${found.join(', ')}`, { hint: 'remove the ones of other hosts, or name one with --etcd-cert and --etcd-key' });
  if (!flags.etcdCa && !entries.includes('etcd-ca.crt')) throw new ConfigError(`no etcd-ca.crt in ${dir} beside ${found[0]}`, { hint: `${issueHint(flags)} (it writes etcd-ca.crt beside the certificate), or name the etcd CA with --etcd-ca` });
  const base = found[0]!.slice(0, -'.crt'.length);
  return { ca, cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) };
}

/** The command that makes this coordinator's etcd-client certificate, with its name when its own certificate says it. */
function issueHint(flags: TlsFlags): string {
  let host = 'HOST';
  try {
    host = /^coordinator-(.+)\.crt$/.exec(basename(resolveTlsPaths(flags, { roles: ['coordinator'] }).cert))?.[1] ?? host;
  } catch {
    // no coordinator certificate to take the name from: the placeholder stays
  }
  return `issue one with: slotctl pki issue etcd-client ${host} --dir PKI-DIR --out ${flags.tlsDir ?? 'DIR'}`;
}
