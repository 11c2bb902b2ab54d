// The cluster's certificates: one CA, and a certificate for each coordinator, agent (machine) and operator. The
// identity is in the subject: CN is the name (a machine, a coordinator host, an operator), OU the role. Keys are ECDSA
// P-256: a handshake costs a fraction of an RSA one, which matters when a thousand agents reconnect at once.
// Generation uses @peculiar/x509 (a maintained X.509 library on the platform's WebCrypto; no hand-written ASN.1);
// reading uses Node's own X509Certificate.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { ValidationError } from '../errors.js';
import { identityOf } from '../tls/credentials.js';
import { assertName } from '../validate.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** What a certificate lets its holder do: agent and coordinator are the daemons, the rest are operator roles. */
export const ROLES = ['agent', 'coordinator', 'reader', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/** The operator roles, each allowed what the ones before it are. */
export const OPERATOR_ROLES = ['reader', 'operator', 'admin'] as const satisfies readonly Role[];
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
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

/** A new cluster CA, valid for `days`. */
export async function createCa(options: { name?: string; days?: number } = {}): Promise<Pem> {
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${options.name ?? 'slotctl cluster CA'}, OU=ca`,
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

/** A certificate for `identity`, signed by `ca`, valid for `days`; usable by a server and a client alike. */
export async function issueCertificate(ca: Pem, identity: Identity, options: { days?: number } = {}): Promise<Pem> {
  assertCertName(identity.name);
  if (!isRole(identity.role)) throw new ValidationError(`unknown role "${identity.role}"`, { hint: `one of ${ROLES.join(', ')}` });
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
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: identity.name }]),
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
}

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
  };
}

/** Whether `cert` was signed by `ca`'s key (the chain slotctl uses is one step long). */
export function signedBy(cert: string, ca: string): boolean {
  return new X509Certificate(cert).verify(new X509Certificate(ca).publicKey);
}
