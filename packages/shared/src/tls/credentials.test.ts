// Mutual TLS between a real grpc-js server and client on loopback, with certificates issued by slotctl's PKI: who is
// let in, who is refused, what the server learns of its caller, and a renewal taken without a restart.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { initPki, issueToDirectory } from '../pki/directory.js';
import { CertificateFiles, channelCredentials, expectIdentity, type Identity, loadCertificateSet, peerIdentity, serverCredentials } from './credentials.js';
import { tlsPaths } from './paths.js';

const dir = mkdtempSync(join(tmpdir(), 'slotctl-tls-'));
const other = mkdtempSync(join(tmpdir(), 'slotctl-tls-other-'));
const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const WHO = { path: '/test.T/Who', requestStream: false, responseStream: false, requestSerialize: bytes.serialize, requestDeserialize: bytes.deserialize, responseSerialize: bytes.serialize, responseDeserialize: bytes.deserialize };

let server: grpc.Server;
let serverFiles: CertificateFiles;
let port = 0;

/** Calls Who with `files`' certificate (none: no client certificate at all), expecting a coordinator. */
async function who(files: CertificateFiles | undefined, expect = expectIdentity('coordinator'), given?: grpc.ChannelCredentials): Promise<string> {
  const Client = grpc.makeGenericClientConstructor({ Who: WHO }, 'T');
  const creds = given ?? (files ? channelCredentials(files, expect) : grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), null, null, { checkServerIdentity: () => undefined }));
  const client = new Client(`127.0.0.1:${port}`, creds);
  try {
    return await new Promise<string>((resolve, reject) => {
      (client as unknown as { Who: (b: Buffer, o: object, cb: (e: Error | null, r?: Buffer) => void) => void }).Who(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (e, r) => (e ? reject(e) : resolve(r!.toString())));
    });
  } finally {
    client.close();
  }
}

const filesOf = (d: string, id: Identity) => new CertificateFiles(tlsPaths(d, id), { reloadMs: 50 });

beforeAll(async () => {
  await initPki(dir);
  await initPki(other);
  for (const id of [{ role: 'coordinator', name: 'co' }, { role: 'agent', name: 'm1' }, { role: 'agent', name: 'm2' }, { role: 'reader', name: 'alice' }] as const) await issueToDirectory(dir, id);
  await issueToDirectory(other, { role: 'agent', name: 'm1' });
  serverFiles = filesOf(dir, { role: 'coordinator', name: 'co' });
  server = new grpc.Server();
  server.addService({ Who: WHO }, {
    Who: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const id = peerIdentity(call);
      cb(null, Buffer.from(id ? `${id.role}:${id.name}` : 'nobody'));
    },
  });
  port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', serverCredentials(serverFiles), (e, p) => (e ? reject(e) : resolve(p))));
});

afterAll(() => {
  server?.forceShutdown();
  serverFiles?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

describe('mutual TLS', () => {
  it('tells the server who calls: the name and role of the client certificate', async () => {
    expect(await who(filesOf(dir, { role: 'agent', name: 'm1' }))).toBe('agent:m1');
    expect(await who(filesOf(dir, { role: 'reader', name: 'alice' }))).toBe('reader:alice');
  });

  it('refuses a client without a certificate and one from another CA', async () => {
    await expect(who(undefined)).rejects.toThrow();
    // a client of another cluster's CA that trusts this server (so that the server's refusal is what is seen)
    const stranger = tlsPaths(other, { role: 'agent', name: 'm1' });
    const creds = grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), readFileSync(stranger.key), readFileSync(stranger.cert), { checkServerIdentity: () => undefined });
    await expect(who(undefined, undefined, creds)).rejects.toThrow(/UNAVAILABLE|14/);
    // and the same client with this CA's certificate gets in
    const own = tlsPaths(dir, { role: 'agent', name: 'm1' });
    expect(await who(undefined, undefined, grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), readFileSync(own.key), readFileSync(own.cert), { checkServerIdentity: () => undefined }))).toBe('agent:m1');
  });

  it('refuses a server whose certificate names another identity than the one dialled for', async () => {
    await expect(who(filesOf(dir, { role: 'agent', name: 'm1' }), expectIdentity('agent', 'm2'))).rejects.toThrow(/UNAVAILABLE|14/);
  });

  it('takes a renewed certificate for new connections, without a restart', async () => {
    const client = filesOf(dir, { role: 'agent', name: 'm2' });
    expect(await who(client)).toBe('agent:m2');
    const before = serverFiles.notAfter;
    // the same files unwatched (no listener, so no timer): only its own reload() reads them
    const unwatched = new CertificateFiles(tlsPaths(dir, { role: 'coordinator', name: 'co' }));
    await issueToDirectory(dir, { role: 'coordinator', name: 'co' }, { days: 30 });
    expect(unwatched.reload()).toBe(true);
    expect(unwatched.reload()).toBe(false);
    expect(unwatched.notAfter.getTime()).toBeLessThan(before.getTime());
    // the server's set is watched every 50 ms: its timer may have taken the renewal before this line, so whether this
    // reload() is the one that takes it is not the point; that the server has it is
    serverFiles.reload();
    expect(serverFiles.notAfter.getTime()).toBe(unwatched.notAfter.getTime());
    expect(await who(filesOf(dir, { role: 'agent', name: 'm2' }))).toBe('agent:m2');
  });

  it('keeps its set when a renewal is half written, and says why', async () => {
    const errors: Error[] = [];
    const paths = tlsPaths(dir, { role: 'agent', name: 'm1' });
    const files = new CertificateFiles(paths, { onError: (e) => errors.push(e) });
    const identity = files.identity;
    // a key of another certificate beside this one
    const m2 = tlsPaths(dir, { role: 'agent', name: 'm2' });
    const saved = readFileSync(paths.key);
    writeFileSync(paths.key, readFileSync(m2.key), { mode: 0o600 });
    expect(files.reload()).toBe(false);
    expect(errors[0]?.message).toMatch(/does not belong to the certificate/);
    expect(files.identity).toEqual(identity);
    writeFileSync(paths.key, saved, { mode: 0o600 });
  });

  it('refuses a key others can read, a certificate of another role, and says how to mend each', () => {
    const paths = tlsPaths(dir, { role: 'reader', name: 'alice' });
    chmodSync(paths.key, 0o644);
    try {
      expect(() => loadCertificateSet(paths)).toThrow(ConfigError);
      expect(() => loadCertificateSet(paths)).toThrow(/can be read by others/);
    } finally {
      chmodSync(paths.key, 0o600);
    }
    expect(() => loadCertificateSet(paths, expectIdentity('agent', 'm1'))).toThrow(/is for reader alice, not for agent/);
    let missing: ConfigError | undefined;
    try {
      loadCertificateSet({ ...paths, cert: join(dir, 'missing.crt') });
    } catch (err) {
      missing = err as ConfigError;
    }
    expect(missing?.message).toMatch(/cannot read the certificate .*missing\.crt: ENOENT/);
    expect(missing?.hint).toMatch(/slotctl pki issue/);
  });
});
