// The HTTP endpoints' gate, over real TLS on loopback with certificates of slotctl's PKI: who gets in, who is told
// what to do, and that a renewed server certificate is taken without a restart.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initPki, issueToDirectory } from '../pki/directory.js';
import { CertificateFiles, type Identity } from '../tls/credentials.js';
import { tlsPaths } from '../tls/paths.js';
import { healthRoutes, metricsRoute } from './routes.js';
import { ObserveServer, parseListen } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'slotctl-http-'));
const other = mkdtempSync(join(tmpdir(), 'slotctl-http-other-'));
const log = pino({ level: 'silent' });
let server: ObserveServer;
let files: CertificateFiles;
let ready = true;

interface Answer {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}

/** GET `path` as `id` (undefined: no client certificate; `from`: a PKI directory other than the cluster's). */
function get(path: string, id: Identity | undefined, from = dir, method = 'GET'): Promise<Answer> {
  const client = id ? tlsPaths(from, id) : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        path,
        method,
        ca: readFileSync(join(dir, 'ca.crt')),
        // the server's certificate names a coordinator, not an address: accepted by its CA alone here
        checkServerIdentity: () => undefined,
        ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
        agent: false,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  await initPki(dir);
  await initPki(other);
  for (const id of [{ role: 'coordinator', name: 'co' }, { role: 'agent', name: 'm1' }, { role: 'reader', name: 'alice' }, { role: 'admin', name: 'root' }] as const) await issueToDirectory(dir, id);
  await issueToDirectory(other, { role: 'reader', name: 'mallory' });
  files = new CertificateFiles(tlsPaths(dir, { role: 'coordinator', name: 'co' }), { reloadMs: 50 });
  server = new ObserveServer({
    certificates: files,
    log,
    program: 'test',
    routes: [...healthRoutes(() => ({ ready, reason: ready ? 'serving' : 'no leader known' })), metricsRoute({ contentType: 'text/plain; version=0.0.4', metrics: async () => 'up 1\n' })],
  });
  await server.listen('127.0.0.1:0');
});

afterAll(async () => {
  await server?.close();
  files?.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});

describe('HTTP endpoints over mutual TLS', () => {
  it('serves a reader and anyone above it', async () => {
    expect(await get('/livez', { role: 'reader', name: 'alice' })).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get('/metrics', { role: 'admin', name: 'root' })).toMatchObject({ status: 200, body: 'up 1\n' });
  });

  it('tells a caller without a certificate, with another CA\'s, or with a role that is not an operator\'s, how to get one', async () => {
    const none = await get('/metrics', undefined);
    expect(none.status).toBe(401);
    expect(none.body).toContain('no client certificate');
    expect(none.body).toContain('slotctl pki issue operator NAME --role reader');
    const stranger = await get('/metrics', { role: 'reader', name: 'mallory' }, other);
    expect(stranger.status).toBe(401);
    expect(stranger.body).toContain('certificate refused');
    const agent = await get('/metrics', { role: 'agent', name: 'm1' });
    expect(agent.status).toBe(403);
    expect(agent.body).toContain('m1 has role agent: /metrics needs role reader');
  });

  it('answers readiness by its state, looks only, and lists what it serves for an unknown path', async () => {
    expect((await get('/readyz', { role: 'reader', name: 'alice' })).status).toBe(200);
    ready = false;
    const down = await get('/readyz', { role: 'reader', name: 'alice' });
    ready = true;
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body)).toEqual({ ready: false, reason: 'no leader known' });
    expect((await get('/metrics', { role: 'admin', name: 'root' }, dir, 'POST')).status).toBe(405);
    const unknown = await get('/nothing', { role: 'reader', name: 'alice' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toContain('/readyz');
    expect(unknown.headers['cache-control']).toBe('no-store');
  });

  it('takes a renewed server certificate for new connections', async () => {
    const before = files.notAfter.getTime();
    await issueToDirectory(dir, { role: 'coordinator', name: 'co' }, { days: 3 });
    await new Promise((r) => setTimeout(r, 300));
    expect(files.notAfter.getTime()).not.toBe(before);
    // a new connection sees the renewed certificate
    const seen = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.port, path: '/livez', ca: readFileSync(join(dir, 'ca.crt')), checkServerIdentity: () => undefined, agent: false, ...(() => { const p = tlsPaths(dir, { role: 'reader', name: 'alice' }); return { cert: readFileSync(p.cert), key: readFileSync(p.key) }; })() }, (res) => {
        resolve(new Date((res.socket as import('node:tls').TLSSocket).getPeerCertificate().valid_to).toISOString());
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    expect(Math.abs(Date.parse(seen) - files.notAfter.getTime())).toBeLessThan(1000);
  });

  it('does not let a session resumed without a certificate keep the one it began with', async () => {
    const alice = tlsPaths(dir, { role: 'reader', name: 'alice' });
    const ca = readFileSync(join(dir, 'ca.crt'));
    // a TLS connection with alice's certificate, then a new one offering its session and no certificate
    const first = tlsConnect({ host: '127.0.0.1', port: server.port, ca, cert: readFileSync(alice.cert), key: readFileSync(alice.key), checkServerIdentity: () => undefined });
    const session = await new Promise<Buffer | undefined>((resolve) => {
      let got: Buffer | undefined;
      first.on('session', (s: Buffer) => (got = s));
      first.once('secureConnect', () => {
        first.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
      first.on('data', () => undefined);
      first.once('close', () => resolve(got));
    });
    const second = tlsConnect({ host: '127.0.0.1', port: server.port, ca, session, checkServerIdentity: () => undefined });
    let reused: boolean | undefined;
    const answer = await new Promise<string>((resolve, reject) => {
      let text = '';
      second.once('secureConnect', () => (reused = second.isSessionReused()) !== undefined && second.write('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      second.on('data', (d: Buffer) => (text += d.toString()));
      second.once('close', () => resolve(text));
      second.once('error', reject);
    });
    expect(session).toBeDefined();
    expect(reused).toBe(false);
    expect(answer).toMatch(/^HTTP\/1.1 401/);
  });

  it('closes at once with a connection that never began its handshake, and caps connections per address', async () => {
    const other = new ObserveServer({ certificates: files, log, program: 'test', routes: healthRoutes(() => ({ ready: true, reason: 'x' })) });
    await other.listen('127.0.0.1:0');
    const idle = Array.from({ length: 40 }, () => tcpConnect({ host: '127.0.0.1', port: other.port }));
    await Promise.all(idle.map((c) => new Promise((resolve) => c.once('connect', resolve))));
    // past the cap, connections from the same address are closed at once
    const closedEarly = await Promise.all(idle.map((c) => new Promise<boolean>((resolve) => {
      c.once('close', () => resolve(true));
      setTimeout(() => resolve(false), 500);
    })));
    expect(closedEarly.filter(Boolean).length).toBe(8);
    const t0 = Date.now();
    await other.close();
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const c of idle) c.destroy();
  });

  it('parses HOST:PORT and says how to write it', () => {
    expect(parseListen('0.0.0.0:7480', '--http-listen')).toEqual({ host: '0.0.0.0', port: 7480 });
    expect(parseListen('[::1]:9', '--http-listen')).toEqual({ host: '::1', port: 9 });
    expect(() => parseListen('7480', '--http-listen')).toThrow(/--http-listen "7480" is not HOST:PORT/);
    expect(() => parseListen('a:70000', '--http-listen')).toThrow(/not HOST:PORT/);
  });
});
