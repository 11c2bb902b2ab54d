// The other half of the wall between the two CAs: nothing the etcd CA signed gets into slotctl. A real grpc-js server
// and client on loopback with slotctl's own TLS set-up (packages/shared/src/tls): an etcd-client or etcd member
// certificate from the same PKI directory is refused as a client (at the handshake, or — the coordinator's way —
// let through with no identity), refused as a server, and refused as a process's own certificate.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { CertificateFiles, channelCredentials, loadCertificateSet, peerIdentity, serverCredentials, TLS_CHANNEL_OPTIONS } from '../tls/credentials.js';
import { tlsPaths } from '../tls/paths.js';
import { initPki, issueToDirectory } from './directory.js';

const dir = mkdtempSync(join(tmpdir(), 'slotctl-pki-wall-'));
const bytes = (b: Buffer) => b;
const WHO = { path: '/test.T/Who', requestStream: false, responseStream: false, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes };
const servers: grpc.Server[] = [];
const files: CertificateFiles[] = [];

const COORDINATOR = { role: 'coordinator', name: 'co1' } as const;
const AGENT = { role: 'agent', name: 'm1' } as const;
const ETCD_CLIENT = { role: 'etcd-client', name: 'co1' } as const;
const ETCD_MEMBER = { role: 'etcd', name: 'e1' } as const;

/** A server answering Who with its caller's identity, with `id`'s certificate; `refuseInHandlers` as the coordinator's. */
async function serve(id: { role: string; name: string }, options: { refuseInHandlers?: boolean } = {}): Promise<number> {
  const own = new CertificateFiles(tlsPaths(dir, id));
  files.push(own);
  return listen(serverCredentials(own, options));
}

async function listen(credentials: grpc.ServerCredentials): Promise<number> {
  const server = new grpc.Server();
  servers.push(server);
  server.addService({ Who: WHO }, {
    Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const who = peerIdentity(call);
      cb(null, Buffer.from(who ? `${who.role}:${who.name}` : 'nobody'));
    },
  });
  return new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))));
}

/** Calls Who at `port` showing `id`'s certificate and trusting the cluster CA (raw grpc credentials: no checks of ours). */
async function who(port: number, id: { role: string; name: string }, creds?: grpc.ChannelCredentials): Promise<string> {
  const paths = tlsPaths(dir, id);
  const channel = creds ?? grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), readFileSync(paths.key), readFileSync(paths.cert), { checkServerIdentity: () => undefined });
  const Client = grpc.makeGenericClientConstructor({ Who: WHO }, 'T');
  const client = new Client(`127.0.0.1:${port}`, channel, TLS_CHANNEL_OPTIONS);
  try {
    return await new Promise<string>((resolve, reject) => {
      (client as unknown as { Who: (b: Buffer, o: object, cb: (e: Error | null, r?: Buffer) => void) => void }).Who(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!.toString())));
    });
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  await initPki(dir);
  for (const id of [COORDINATOR, ETCD_CLIENT, AGENT]) await issueToDirectory(dir, id);
  await issueToDirectory(dir, ETCD_MEMBER, { altNames: { ips: ['127.0.0.1'] } });
});

afterAll(() => {
  for (const s of servers) s.forceShutdown();
  for (const f of files) f.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('certificates of the etcd CA in slotctl', () => {
  it('are refused at the handshake by a slotctl server (an agent\'s peer port), where one of the cluster CA gets in', async () => {
    const port = await serve(AGENT);
    expect(await who(port, COORDINATOR)).toBe('coordinator:co1');
    await expect(who(port, ETCD_CLIENT)).rejects.toThrow(/UNAVAILABLE|14/);
    await expect(who(port, ETCD_MEMBER)).rejects.toThrow(/UNAVAILABLE|14/);
  });

  it('carry no identity to a coordinator, which lets a bad certificate through only to refuse and record it', async () => {
    const port = await serve(COORDINATOR, { refuseInHandlers: true });
    expect(await who(port, AGENT)).toBe('agent:m1');
    expect(await who(port, ETCD_CLIENT)).toBe('nobody');
    expect(await who(port, ETCD_MEMBER)).toBe('nobody');
  });

  it('are refused as a server by a slotctl client, whatever identity it would accept', async () => {
    // an etcd member's certificate on a server that asks nothing of its clients: only the client's check is left
    const member = tlsPaths(dir, ETCD_MEMBER);
    const port = await listen(grpc.ServerCredentials.createSsl(null, [{ private_key: readFileSync(member.key), cert_chain: readFileSync(member.cert) }], false));
    const agent = new CertificateFiles(tlsPaths(dir, AGENT));
    files.push(agent);
    await expect(who(port, AGENT, channelCredentials(agent, () => undefined))).rejects.toThrow(/UNAVAILABLE|14/);
    // the same client gets an answer from a server of the cluster CA
    expect(await who(await serve(COORDINATOR), AGENT, channelCredentials(agent, () => undefined))).toBe('agent:m1');
  });

  it('cannot be a slotctl process\'s own certificate: the cluster CA did not sign it', () => {
    expect(() => loadCertificateSet({ ...tlsPaths(dir, ETCD_CLIENT), ca: join(dir, 'ca.crt') })).toThrow(ConfigError);
    expect(() => loadCertificateSet({ ...tlsPaths(dir, ETCD_CLIENT), ca: join(dir, 'ca.crt') })).toThrow(/was not signed by the CA in .*ca\.crt/);
  });
});
