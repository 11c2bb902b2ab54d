// Readiness from the agent's state (pure), and the agent's routes served as slot-agent serves them: by the shared
// ObserveServer with the agent's own certificate, to a reader's certificate, over real TLS on loopback.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateFiles, ObserveServer, tlsPaths, type Identity } from '@slotctl/shared';
import { initPki, issueToDirectory } from '@slotctl/shared/pki';
import type { LinkState } from '../coordinator/link.js';
import { agentReadiness, agentRoutes, type ReadinessView } from './http.js';
import { AgentMetrics } from './metrics.js';

const NOW = Date.parse('2026-12-04T12:00:00.000Z');
const CONNECTED: LinkState = { phase: 'connected', since: NOW - 60_000, heartbeatIntervalMs: 1000, leaseMs: 5000, coordinator: '10.0.0.1:7400', term: 3 };
const view = (v: Partial<ReadinessView>): ReadinessView => ({ phase: 'running', link: CONNECTED, leaseRemainingMs: 3200, holder: 'coordinator lease', term: 3, ...v });

describe('agent readiness', () => {
  it('is ready with a session to the leader and a lease held', () => {
    expect(agentReadiness(view({}), NOW)).toEqual({
      ready: true,
      reason: 'connected to 10.0.0.1:7400 (term 3), lease held for 3.2 s more',
      connected: true,
      coordinator: '10.0.0.1:7400',
      term: 3,
      leaseRemainingSeconds: 3.2,
      holder: 'coordinator lease',
    });
  });

  it('is not ready once the lease has run out, and says since when the masters are fenced', () => {
    const r = agentReadiness(view({ leaseRemainingMs: -90_000 }), NOW);
    expect(r).toMatchObject({ ready: false, reason: 'no lease: masters fenced since 2026-12-04T11:58:30.000Z', connected: true, leaseRemainingSeconds: 0, holder: null });
    // the deadline itself is expired (the fence acts at it)
    expect(agentReadiness(view({ leaseRemainingMs: 0 }), NOW).ready).toBe(false);
  });

  it('is not ready before the first lease, connected or not', () => {
    expect(agentReadiness(view({ leaseRemainingMs: undefined }), NOW)).toMatchObject({ ready: false, reason: 'no lease yet: connected to 10.0.0.1:7400, waiting for the first acknowledged heartbeat' });
    const connecting = agentReadiness(view({ link: { phase: 'connecting', attempt: 0, coordinator: '10.0.0.1:7400' }, leaseRemainingMs: undefined }), NOW);
    expect(connecting).toMatchObject({ ready: false, reason: 'not connected to a coordinator: connecting to 10.0.0.1:7400; no lease yet', connected: false });
  });

  it('is not ready without a session, even while a lease (or a failsafe promise) still holds, and says why the link is down', () => {
    const backoff: LinkState = { phase: 'backoff', attempt: 2, retryInMs: 1234, lastError: 'connect ECONNREFUSED 10.0.0.1:7400', coordinator: '10.0.0.2:7400' };
    expect(agentReadiness(view({ link: backoff, leaseRemainingMs: 1500, holder: 'failsafe (partners promised)' }), NOW)).toMatchObject({
      ready: false,
      reason: 'not connected to a coordinator: connect ECONNREFUSED 10.0.0.1:7400; next try 10.0.0.2:7400 in 1.2 s',
      holder: 'failsafe (partners promised)',
    });
    expect(agentReadiness(view({ link: backoff, leaseRemainingMs: -2000 }), NOW).reason).toBe(
      'not connected to a coordinator: connect ECONNREFUSED 10.0.0.1:7400; next try 10.0.0.2:7400 in 1.2 s; no lease: masters fenced since 2026-12-04T11:59:58.000Z',
    );
  });

  it('is not ready while the agent starts or stops', () => {
    expect(agentReadiness(view({ phase: 'starting', link: undefined, leaseRemainingMs: undefined }), NOW)).toMatchObject({ ready: false, reason: 'agent starting (no lease yet)', coordinator: null });
    expect(agentReadiness(view({ phase: 'stopping', link: { phase: 'stopped' } }), NOW)).toMatchObject({ ready: false, reason: 'agent stopping' });
  });
});

describe("the agent's endpoints over mutual TLS with its own certificate", () => {
  const dir = mkdtempSync(join(tmpdir(), 'slotctl-agent-http-'));
  let server: ObserveServer;
  let files: CertificateFiles;
  let ready = view({ link: { phase: 'backoff', attempt: 1, retryInMs: 500, lastError: 'coordinator ended the session', coordinator: '10.0.0.1:7400' }, leaseRemainingMs: -5000 });
  const metrics = new AgentMetrics();
  metrics.setSource(() => ({ connected: false, term: 3, leaseRemainingMs: -5000, leaseMs: 5000, slots: [] }));

  function get(path: string, id: Identity): Promise<{ status: number; body: string; type: string }> {
    const client = tlsPaths(dir, id);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.port,
          path,
          ca: readFileSync(join(dir, 'ca.crt')),
          // the agent's certificate names the machine (DNS:m1), not this address: a scraper sets server_name
          servername: 'm1',
          cert: readFileSync(client.cert),
          key: readFileSync(client.key),
          agent: false,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    await initPki(dir);
    for (const id of [{ role: 'agent', name: 'm1' }, { role: 'agent', name: 'm2' }, { role: 'reader', name: 'prometheus' }] as const) await issueToDirectory(dir, id);
    files = new CertificateFiles(tlsPaths(dir, { role: 'agent', name: 'm1' }));
    server = new ObserveServer({ certificates: files, routes: agentRoutes({ readiness: () => agentReadiness(ready, NOW), metrics }), log: pino({ level: 'silent' }), program: 'slot-agent' });
    await server.listen('127.0.0.1:0');
  });

  afterAll(async () => {
    await server?.close();
    files?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a reader: live, not ready with the reason (503), then ready (200), and the metrics', async () => {
    const reader = { role: 'reader', name: 'prometheus' };
    expect(await get('/livez', reader)).toMatchObject({ status: 200, body: 'ok\n' });
    const down = await get('/readyz', reader);
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).reason).toBe('not connected to a coordinator: coordinator ended the session; next try 10.0.0.1:7400 in 0.5 s; no lease: masters fenced since 2026-12-04T11:59:55.000Z');
    ready = view({});
    const up = await get('/readyz', reader);
    expect(up.status).toBe(200);
    expect(JSON.parse(up.body)).toMatchObject({ ready: true, connected: true });
    const scraped = await get('/metrics', reader);
    expect(scraped.status).toBe(200);
    expect(scraped.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(scraped.body.split('\n')).toContain('slotctl_agent_lease_seconds 5');
  });

  it('refuses another agent (a certificate without a reader role)', async () => {
    const other = await get('/metrics', { role: 'agent', name: 'm2' });
    expect(other.status).toBe(403);
    expect(other.body).toContain('m2 has role agent: /metrics needs role reader');
  });
});
