// Certificates for etcd members: the addresses they are valid for, the usages etcd needs, signed by the etcd CA; the
// etcd-client ones coordinators show etcd; and the wall between the two CAs: neither signs the other's roles. (etcd
// itself runs them, and refuses the cluster CA's, in test/etcd-harness.test.ts.)
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.js';
import { createCa, describeCertificate, issueCertificate, type Pem, signedBy } from './certificates.js';

let clusterCa: Pem;
let ca: Pem; // the etcd CA, which every certificate etcd sees comes from
beforeAll(async () => {
  clusterCa = await createCa();
  ca = await createCa({ kind: 'etcd' });
});

/** Node's own check of a server dialled at `host` (what grpc-js runs when the coordinator dials https://IP:PORT). */
const serverCheck = (host: string, pem: string) => checkServerIdentity(host, new X509Certificate(pem).toLegacyObject() as PeerCertificate);

describe('etcd member certificates', () => {
  it('name every address given, allow serverAuth and clientAuth, and are signed by the etcd CA', async () => {
    const pem = await issueCertificate(ca, { role: 'etcd', name: 'e1' }, { altNames: { ips: ['10.231.1.1', '127.0.0.1', 'fd00::11'], dns: ['E1.etcd.example'] } });
    const info = describeCertificate(pem.cert);
    expect(info).toMatchObject({ name: 'e1', role: 'etcd', isCa: false });
    expect(info.altNames).toEqual(['IP Address:10.231.1.1', 'IP Address:127.0.0.1', 'IP Address:FD00:0:0:0:0:0:0:11', 'DNS:e1.etcd.example']);
    expect(info.usages).toEqual(['serverAuth', 'clientAuth']);
    expect(info.caKind).toBe('etcd');
    expect(signedBy(pem.cert, ca.cert)).toBe(true);
    expect(signedBy(pem.cert, clusterCa.cert)).toBe(false);
    expect(signedBy(pem.cert, (await createCa({ kind: 'etcd' })).cert)).toBe(false);
  });

  it('pass the check of a client that dials one of their addresses, and fail it at any other', async () => {
    const pem = await issueCertificate(ca, { role: 'etcd', name: 'e2' }, { altNames: { ips: ['10.231.1.2'], dns: ['e2.example'] } });
    expect(serverCheck('10.231.1.2', pem.cert)).toBeUndefined();
    expect(serverCheck('e2.example', pem.cert)).toBeUndefined();
    expect(serverCheck('10.231.1.3', pem.cert)).toBeInstanceOf(Error);
    expect(serverCheck('127.0.0.1', pem.cert)).toBeInstanceOf(Error); // loopback only when asked for
    expect(serverCheck('e2', pem.cert)).toBeInstanceOf(Error); // the member's name is no address
  });

  it('are refused without an address, with one a certificate cannot hold, or with a wildcard', async () => {
    const issue = (altNames: { ips?: string[]; dns?: string[] }) => issueCertificate(ca, { role: 'etcd', name: 'e3' }, { altNames });
    await expect(issueCertificate(ca, { role: 'etcd', name: 'e3' })).rejects.toThrow(/needs an address/);
    await expect(issue({ ips: [], dns: [] })).rejects.toThrow(ValidationError);
    for (const ip of ['10.0.0', '10.0.0.256', '::ffff:10.0.0.1', 'fe80::1%eth0', 'e3']) await expect(issue({ ips: [ip] })).rejects.toThrow(/not an IPv4 or IPv6 address/);
    for (const dns of ['*.example', '-e3.example', 'e3..example', 'e3.example.', 'e_3']) await expect(issue({ dns: [dns] })).rejects.toThrow(/not a host name/);
  });
});

describe('etcd-client certificates', () => {
  it('are client certificates only (OU etcd-client), signed by the etcd CA', async () => {
    const pem = await issueCertificate(ca, { role: 'etcd-client', name: 'co1' });
    const info = describeCertificate(pem.cert);
    expect(info).toMatchObject({ name: 'co1', role: 'etcd-client', isCa: false, caKind: 'etcd', subject: 'CN=co1, OU=etcd-client', altNames: ['DNS:co1'] });
    expect(info.usages).toEqual(['clientAuth']); // it serves nothing
    expect(signedBy(pem.cert, ca.cert)).toBe(true);
    expect(signedBy(pem.cert, clusterCa.cert)).toBe(false);
    await expect(issueCertificate(ca, { role: 'etcd-client', name: 'co1' }, { altNames: { ips: ['10.0.0.1'] } })).rejects.toThrow(/names no addresses/);
  });
});

describe('the two CAs', () => {
  it('say which they are', () => {
    expect(describeCertificate(clusterCa.cert)).toMatchObject({ isCa: true, caKind: 'cluster', subject: 'CN=slotctl cluster CA, OU=ca' });
    expect(describeCertificate(ca.cert)).toMatchObject({ isCa: true, caKind: 'etcd', subject: 'CN=slotctl etcd CA, OU=etcd-ca' });
  });

  it('each signs only its own roles: nothing of the cluster CA for etcd, nothing of the etcd CA for slotctl', async () => {
    for (const role of ['etcd', 'etcd-client'] as const) {
      await expect(issueCertificate(clusterCa, { role, name: 'x1' }, role === 'etcd' ? { altNames: { ips: ['10.0.0.1'] } } : {})).rejects.toThrow(new RegExp(`a ${role} certificate is signed by the etcd CA, not by the cluster CA`));
    }
    for (const role of ['agent', 'coordinator', 'reader', 'operator', 'admin'] as const) {
      await expect(issueCertificate(ca, { role, name: 'x1' })).rejects.toThrow(ValidationError);
    }
  });
});

describe('other certificates', () => {
  it('carry no addresses: slotctl checks them by the identity they name', async () => {
    await expect(issueCertificate(clusterCa, { role: 'agent', name: 'm1' }, { altNames: { ips: ['10.0.0.1'] } })).rejects.toThrow(/names no addresses/);
  });

  it("a coordinator's is signed by the cluster CA (serverAuth and clientAuth: it serves agents and slotctl)", async () => {
    const pem = await issueCertificate(clusterCa, { role: 'coordinator', name: 'co1' });
    const info = describeCertificate(pem.cert);
    expect(info.usages).toEqual(['serverAuth', 'clientAuth']);
    expect(info.altNames).toEqual(['DNS:co1']);
    expect(info.caKind).toBe('cluster');
    expect(signedBy(pem.cert, clusterCa.cert)).toBe(true);
  });
});
