// The cluster's certificates: two CAs, each with its own certificates. The cluster CA signs every coordinator's, agent's
// (machine) and operator's; the etcd CA every etcd member's and the client certificates etcd lets in (coordinators).
// Two, because etcd lets in any clientAuth certificate of the CA it trusts and cannot be told which (no allowed names
// for clients in 3.4; its users are CNs, the same for an agent and a coordinator on one host): with the cluster CA,
// every mail host could rewrite the cluster state in etcd. The identity is in the subject: CN is the name (a machine,
// a coordinator host, an etcd member, an operator), OU the role. Keys are ECDSA
// P-256: a handshake costs a fraction of an RSA one, which matters when a thousand agents reconnect at once.
// Generation uses @peculiar/x509 (a maintained X.509 library on the platform's WebCrypto; no hand-written ASN.1);
// reading uses Node's own X509Certificate.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { ValidationError } from '../errors.js';
import { identityOf } from '../tls/credentials.js';
import { ETCD_ROLES } from '../tls/paths.js';
import { assertName } from '../validate.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * What a certificate lets its holder do: agent and coordinator are slotctl's daemons, etcd a member of the
 * coordinators' replicated store and etcd-client a coordinator's identity towards it (both signed by the etcd CA,
 * which no slotctl service trusts), the rest are operator roles.
 */
export const ROLES = ['agent', 'coordinator', 'etcd', 'etcd-client', 'reader', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** The operator roles, each allowed what the ones before it are. */
export const OPERATOR_ROLES = ['reader', 'operator', 'admin'] as const satisfies readonly Role[];
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The two CAs of a PKI directory. */
export type CaKind = 'cluster' | 'etcd';
/** The OU of each CA's subject: how a CA certificate says which one it is. */
const CA_UNITS: Record<CaKind, string> = { cluster: 'ca', etcd: 'etcd-ca' };
const CA_NAMES: Record<CaKind, string> = { cluster: 'slotctl cluster CA', etcd: 'slotctl etcd CA' };

/** The CA that signs certificates of `role`. */
export function caKindOf(role: string): CaKind {
  return (ETCD_ROLES as readonly string[]).includes(role) ? 'etcd' : 'cluster';
}

/** Which CA a CA certificate (or, for any other, its issuer) is, by the OU of its subject; older CAs say `ca`. */
function caKindOfSubject(subject: string): CaKind {
  return identityOf(subject)?.role === CA_UNITS.etcd ? 'etcd' : 'cluster';
}

export interface Identity {
  name: string;
  role: Role;
}

export interface Pem {
  cert: string;
  key: string;
}

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** A certificate's notBefore lies this far back: a host whose clock is a little behind still accepts it. */
const CLOCK_SKEW_MS = 5 * 60_000;

function keyPem(der: ArrayBuffer): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

const serial = (): string => {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  return bytes.toString('hex');
};

/** Names a certificate may carry: the cluster's name rule (machines, hosts, operators alike), no DN syntax. */
function assertCertName(name: string): void {
  assertName(name, 'certificate name');
}

/** A new CA (the cluster's unless `kind` says etcd), valid for `days`. */
export async function createCa(options: { name?: string; days?: number; kind?: CaKind } = {}): Promise<Pem> {
  const kind = options.kind ?? 'cluster';
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${options.name ?? CA_NAMES[kind]}, OU=${CA_UNITS[kind]}`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + (options.days ?? 3650) * DAY_MS),
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: keyPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** The addresses an etcd member's certificate is valid for: etcd (Go) and Node check a server by these, not by CN. */
export interface AltNames {
  ips?: readonly string[];
  dns?: readonly string[];
}

export interface IssueOptions {
  days?: number;
  /** Only for role etcd, which needs at least one: the addresses and names clients and peers dial it by. */
  altNames?: AltNames;
}

const DNS_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DNS_RE = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/**
 * The subjectAltName entries of a certificate. slotctl's own links check a peer by the identity in its subject, so
 * their certificates carry their name only (DNS:NAME, as before). An etcd member is checked by address — Go by SAN,
 * Node's default when the coordinator dials https://IP:PORT by IP SAN, and etcd's peer listener also refuses a peer
 * whose IP SANs do not include the address it connects from — so its certificate carries exactly the addresses given.
 */
function subjectAltNames(identity: Identity, altNames: AltNames | undefined): x509.JsonGeneralName[] {
  const given = (altNames?.ips?.length ?? 0) + (altNames?.dns?.length ?? 0);
  if (identity.role !== 'etcd') {
    if (given > 0) throw new ValidationError(`a ${identity.role} certificate names no addresses (only an etcd member's does)`, { hint: 'drop --ip and --dns' });
    return [{ type: 'dns', value: identity.name }];
  }
  if (given === 0) throw new ValidationError(`the etcd member ${identity.name} needs an address to be valid for`, { hint: 'give --ip (the addresses its peers and the coordinators dial) and/or --dns' });
  const ips = [...new Set(altNames?.ips ?? [])].map((ip) => {
    // the zone of a link-local address and an IPv4-mapped form cannot be written into a certificate
    if (isIP(ip) === 0 || ip.includes('%') || (isIP(ip) === 6 && ip.includes('.'))) throw new ValidationError(`"${ip}" is not an IPv4 or IPv6 address a certificate can name`, { hint: 'write IPv4 addresses as a.b.c.d, IPv6 without a zone' });
    return { type: 'ip' as const, value: ip };
  });
  const dns = [...new Set((altNames?.dns ?? []).map((d) => d.toLowerCase()))].map((name) => {
    if (!DNS_RE.test(name)) throw new ValidationError(`"${name}" is not a host name a certificate can name`, { hint: 'letters, digits and "-" in dot-separated labels; no wildcards' });
    return { type: 'dns' as const, value: name };
  });
  return [...ips, ...dns];
}

/**
 * A certificate for `identity`, signed by `ca` (the CA of its role: see caKindOf), valid for `days`. Usable by a
 * server and a client alike (extended key usage serverAuth and clientAuth: an etcd member is both on its peer port,
 * daemons and agents serve and dial), except an etcd-client certificate: clientAuth only, it serves nothing.
 */
export async function issueCertificate(ca: Pem, identity: Identity, options: IssueOptions = {}): Promise<Pem> {
  assertCertName(identity.name);
  if (!isRole(identity.role)) throw new ValidationError(`unknown role "${identity.role}"`, { hint: `one of ${ROLES.join(', ')}` });
  const altNames = subjectAltNames(identity, options.altNames);
  // the separation of the two CAs rests on this: an etcd certificate from the cluster CA would let its holder into
  // slotctl, and an agent's from the etcd CA into etcd
  const want = caKindOf(identity.role);
  const have = caKindOfSubject(new X509Certificate(ca.cert).subject);
  if (want !== have) throw new ValidationError(`a ${identity.role} certificate is signed by the ${want} CA, not by the ${have} CA`, { hint: want === 'etcd' ? 'issue it from the etcd CA (etcd-ca.crt/.key; slotctl pki init --etcd adds one)' : 'issue it from the cluster CA (ca.crt/.key)' });
  const usages = identity.role === 'etcd-client' ? [x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey('pkcs8', Buffer.from(ca.key.replace(/-----[^-]+-----|\s/g, ''), 'base64'), ALGORITHM, false, ['sign']);
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${identity.name}, OU=${identity.role}`,
    issuer: caCert.subject,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + (options.days ?? 365) * DAY_MS),
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.SubjectAlternativeNameExtension(altNames),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem'), key: keyPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

export interface CertificateInfo extends Partial<Identity> {
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
  isCa: boolean;
  /** Which CA this is (a CA certificate) or signed it (any other), by the CA's subject. */
  caKind: CaKind;
  /** subjectAltName entries as OpenSSL prints them (`DNS:co1`, `IP Address:10.0.0.1`). */
  altNames: string[];
  /** Extended key usages by name (`serverAuth`, `clientAuth`), or the OID of one without a name here. */
  usages: string[];
}

const USAGE_NAMES: Record<string, string> = { '1.3.6.1.5.5.7.3.1': 'serverAuth', '1.3.6.1.5.5.7.3.2': 'clientAuth' };

/** What a PEM certificate says (for `slotctl pki show` and start-up checks). */
export function describeCertificate(pem: string): CertificateInfo {
  const cert = new X509Certificate(pem);
  const found = identityOf(cert.subject);
  const identity = found && isRole(found.role) ? { name: found.name, role: found.role } : {};
  return {
    ...identity,
    subject: cert.subject.replace(/\n/g, ', '),
    issuer: cert.issuer.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    fingerprint: cert.fingerprint256,
    isCa: cert.ca,
    caKind: caKindOfSubject(cert.ca ? cert.subject : cert.issuer),
    altNames: cert.subjectAltName ? cert.subjectAltName.split(', ') : [],
    // @peculiar/x509's reading: Node's X509Certificate.keyUsage (the EKUs) is renamed in later Node versions
    usages: (new x509.X509Certificate(pem).getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? []).map((oid) => USAGE_NAMES[String(oid)] ?? String(oid)),
  };
}

/** Whether `cert` was signed by `ca`'s key (the chain slotctl uses is one step long). */
export function signedBy(cert: string, ca: string): boolean {
  return new X509Certificate(cert).verify(new X509Certificate(ca).publicKey);
}
