// Mutual TLS for every gRPC link: the server asks for a client certificate and accepts only one signed by the
// cluster CA; the client accepts only a server whose certificate names the identity it expects (a coordinator, or
// the partner machine it dialled), whatever address it dialled. Certificates are files that an operator renews in
// place: they are read again every `reloadMs`, checked as a set (the key matches the certificate, the CA signed it,
// it is valid now), and only a good set replaces the one in use — new connections use it, open ones go on.
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';

type CertificateProvider = grpc.experimental.CertificateProvider;
type CaCertificateUpdateListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdateListener = grpc.experimental.IdentityCertificateUpdateListener;
import { ConfigError } from '../errors.js';
import { fileStamp } from '../file-stamp.js';
import type { TlsPaths } from './paths.js';

export interface Identity {
  name: string;
  role: string;
}

/** How a process talks gRPC: mutual TLS with its certificate files, or — only when asked for by name — in the clear. */
export type Transport = { kind: 'tls'; paths: TlsPaths; reloadMs?: number } | { kind: 'insecure' };

export const DEFAULT_RELOAD_MS = 10_000;

/** CN and OU of a certificate's subject: the name and role slotctl's certificates carry. */
export function identityOf(subject: Record<string, string | string[] | undefined> | string | undefined): Identity | undefined {
  if (!subject) return undefined;
  const fields = typeof subject === 'string' ? Object.fromEntries(subject.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])) : subject;
  const name = fields.CN;
  const role = fields.OU;
  return typeof name === 'string' && typeof role === 'string' ? { name, role } : undefined;
}

/** The identity of the certificate a call's client presented (undefined on an insecure link). */
export function peerIdentity(call: { getAuthContext?: () => { sslPeerCertificate?: { subject?: Record<string, string | string[] | undefined> } } | null }): Identity | undefined {
  return identityOf(call.getAuthContext?.()?.sslPeerCertificate?.subject);
}

interface CertificateSet {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
  identity: Identity;
  notAfter: Date;
  digest: string;
}

const read = (path: string, what: string, hint: string): Buffer => {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`cannot read the ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { hint });
  }
};

/** Device, inode, size and change time of each file ('' for one that cannot be looked at): changes when one is replaced or written. */
function fileStamps(paths: TlsPaths): string {
  return [paths.ca, paths.cert, paths.key]
    .map((path) => fileStamp(path))
    .join('|');
}

/**
 * Reads and checks a set of certificate files: the key is the certificate's and readable by its owner only, the CA
 * signed the certificate, it is valid now, and (with `expect`) it names the identity this process must have.
 * `issueHint` says how to get the right certificate, where the general one would not (the etcd CA's).
 */
export function loadCertificateSet(paths: TlsPaths, expect?: (id: Identity) => string | undefined, options: { issueHint?: string } = {}): CertificateSet {
  const hint = options.issueHint ?? 'issue one with: slotctl pki issue ROLE NAME --dir PKI-DIR (see slotctl pki --help)';
  const ca = read(paths.ca, 'CA certificate', hint);
  const cert = read(paths.cert, 'certificate', hint);
  const key = read(paths.key, 'private key', hint);
  const mode = statSync(paths.key).mode & 0o777;
  if (mode & 0o077) throw new ConfigError(`the private key ${paths.key} can be read by others (mode ${mode.toString(8).padStart(4, '0')})`, { hint: `chmod 600 ${paths.key}` });
  const owner = statSync(paths.key).uid;
  if (process.getuid && owner !== process.getuid() && owner !== 0) {
    throw new ConfigError(`the private key ${paths.key} belongs to uid ${owner}, not to this process (uid ${process.getuid()})`, { hint: `chown it to the user the daemon runs as` });
  }
  let x509: X509Certificate;
  let caX509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
    caX509 = new X509Certificate(ca);
  } catch (err) {
    throw new ConfigError(`${paths.cert} or ${paths.ca} is not a PEM certificate: ${(err as Error).message}`, { hint });
  }
  if (!x509.checkPrivateKey(createPrivateKey(key))) throw new ConfigError(`the private key ${paths.key} does not belong to the certificate ${paths.cert}`, { hint: 'issue both anew (a renewal writes them together)' });
  if (!x509.verify(caX509.publicKey)) throw new ConfigError(`the certificate ${paths.cert} was not signed by the CA in ${paths.ca}`, { hint: options.issueHint ?? 'use the cluster CA that issued it, or issue a new one from this CA' });
  const now = Date.now();
  const notAfter = new Date(x509.validTo);
  if (now > notAfter.getTime()) throw new ConfigError(`the certificate ${paths.cert} expired on ${notAfter.toISOString()}`, { hint: 'renew it: slotctl pki issue … (daemons reload renewed files by themselves)' });
  if (now < new Date(x509.validFrom).getTime()) throw new ConfigError(`the certificate ${paths.cert} is not valid before ${new Date(x509.validFrom).toISOString()}`, { hint: 'check this host\'s clock' });
  const identity = identityOf(x509.subject);
  if (!identity) throw new ConfigError(`the certificate ${paths.cert} names no slotctl identity (subject ${x509.subject.replace(/\n/g, ', ')})`, { hint });
  const problem = expect?.(identity);
  if (problem) throw new ConfigError(`the certificate ${paths.cert} ${problem}`, { hint });
  const digest = createHash('sha256').update(ca).update(cert).update(key).digest('hex');
  return { ca, cert, key, identity, notAfter, digest };
}

/**
 * The certificate files of a process, as grpc-js's certificate provider: loaded (and checked) once at start, read
 * again every `reloadMs`; a changed set that passes the checks replaces the old one for new connections, one that
 * does not is reported through `onError` and the old set stays in use.
 */
export class CertificateFiles implements CertificateProvider {
  private current: CertificateSet;
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private timer: NodeJS.Timeout | undefined;
  /** The files' identities and times when the set in use was read (see reload). */
  private stamps: string;

  constructor(
    readonly paths: TlsPaths,
    private readonly options: { reloadMs?: number; expect?: (id: Identity) => string | undefined; onReload?: (id: Identity, notAfter: Date) => void; onError?: (err: Error) => void } = {},
  ) {
    this.stamps = fileStamps(paths);
    this.current = loadCertificateSet(paths, options.expect);
  }

  get identity(): Identity {
    return this.current.identity;
  }

  get notAfter(): Date {
    return this.current.notAfter;
  }

  /** The set in use, for a server that takes its TLS material directly (Node's https: the HTTP endpoints). */
  get material(): { ca: Buffer; cert: Buffer; key: Buffer } {
    return { ca: this.current.ca, cert: this.current.cert, key: this.current.key };
  }

  /**
   * Calls `listener` after each reload that took a new set (the identity listeners' moment), until the returned
   * function is called; the files are watched meanwhile.
   */
  onRenewal(listener: () => void): () => void {
    const l: IdentityCertificateUpdateListener = () => listener();
    this.identityListeners.add(l);
    this.watch();
    return () => {
      this.identityListeners.delete(l);
      this.unwatchIfIdle();
    };
  }

  /** Reads the files again now, unless none changed since the last look; returns whether a new set was taken. */
  reload(): boolean {
    // a look costs three stat calls; reading and checking the set (~1.5 ms: a key, a certificate, a signature) only
    // when one of the files was replaced or written since (a process with many certificates — the benchmark's
    // simulated agents — stalled for the whole set every period otherwise)
    const seen = fileStamps(this.paths);
    if (seen === this.stamps) return false;
    let next: CertificateSet;
    try {
      next = loadCertificateSet(this.paths, this.options.expect);
    } catch (err) {
      this.options.onError?.(err as Error);
      return false;
    }
    this.stamps = seen;
    if (next.digest === this.current.digest) return false;
    this.current = next;
    for (const l of this.caListeners) l({ caCertificate: next.ca });
    for (const l of this.identityListeners) l({ certificate: next.cert, privateKey: next.key });
    this.options.onReload?.(next.identity, next.notAfter);
    return true;
  }

  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    // not at once: grpc-js adds the watcher that wants the result only after this returns
    queueMicrotask(() => this.caListeners.has(listener) && listener({ caCertificate: this.current.ca }));
    this.watch();
  }

  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
    this.unwatchIfIdle();
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    queueMicrotask(() => this.identityListeners.has(listener) && listener({ certificate: this.current.cert, privateKey: this.current.key }));
    this.watch();
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
    this.unwatchIfIdle();
  }

  /** Stops reading the files (a process shutting down). */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.reload(), this.options.reloadMs ?? DEFAULT_RELOAD_MS);
    this.timer.unref();
  }

  private unwatchIfIdle(): void {
    if (this.caListeners.size === 0 && this.identityListeners.size === 0) this.close();
  }
}

/**
 * Server credentials: mutual TLS with `files`, or insecure. By default a client without a certificate signed by the
 * CA fails the handshake. `refuseInHandlers`: the handshake asks for a certificate but lets a bad one through with no
 * identity (grpc-js gives an unverified peer an empty auth context), so that every handler — which must then refuse a
 * call without an identity — can record who tried (the coordinator raises an event for a refused agent).
 */
export function serverCredentials(files: CertificateFiles | undefined, options: { refuseInHandlers?: boolean } = {}): grpc.ServerCredentials {
  if (!files) return grpc.ServerCredentials.createInsecure();
  return grpc.experimental.createCertificateProviderServerCredentials(files, files, !options.refuseInHandlers);
}

/**
 * Channel credentials: mutual TLS with `files`, accepting a server only when `expectServer` finds nothing wrong with
 * the identity its certificate names (the address dialled is not what is trusted); or insecure.
 */
export function channelCredentials(files: CertificateFiles | undefined, expectServer: (id: Identity) => string | undefined): grpc.ChannelCredentials {
  if (!files) return grpc.credentials.createInsecure();
  return grpc.experimental.createCertificateProviderChannelCredentials(files, files, { checkServerIdentity: serverIdentityCheck(expectServer) });
}

/** A TLS `checkServerIdentity` that accepts the server by the identity its certificate names, not by address. */
export function serverIdentityCheck(expectServer: (id: Identity) => string | undefined): (host: string, cert: { subject: unknown }) => Error | undefined {
  return (_host, cert) => {
    const id = identityOf(cert.subject as Record<string, string>);
    const problem = id ? expectServer(id) : 'names no slotctl identity';
    return problem ? new Error(`the server's certificate ${problem}`) : undefined;
  };
}

/**
 * Channel options of every TLS client: the name sent in the handshake (SNI). Peers are dialled by IP address, which
 * TLS may not carry as a server name (Node warns on every process, DEP0123); the server's identity is checked by its
 * certificate's subject, never by this name.
 */
export const TLS_CHANNEL_OPTIONS = { 'grpc.ssl_target_name_override': 'slotctl' } as const;

/** `expect` for a certificate of `role` (and `name`, if given). */
export function expectIdentity(role: string | readonly string[], name?: string): (id: Identity) => string | undefined {
  const roles = typeof role === 'string' ? [role] : role;
  return (id) => {
    if (!roles.includes(id.role)) return `is for ${id.role} ${id.name}, not for ${roles.join(' or ')}`;
    if (name !== undefined && id.name !== name) return `names ${id.role} ${id.name}, not ${name}`;
    return undefined;
  };
}
