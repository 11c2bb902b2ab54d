// A GET over mutual TLS as slotctl's HTTP clients make it (tests, benchmarks): the cluster CA, a client certificate of
// slotctl's PKI (or none, to see a refusal), and the server accepted by that CA alone — its certificate names a
// coordinator or machine, not the loopback address dialled.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { tlsPaths } from '@slotctl/shared';

export interface HttpsAnswer {
  status: number;
  body: string;
  ms: number;
}

export function httpsGet(url: string | URL, pkiDir: string, as: { role: string; name: string } | null, timeoutMs = 60_000): Promise<HttpsAnswer> {
  const client = as ? tlsPaths(pkiDir, as) : undefined;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { ca: readFileSync(join(pkiDir, 'ca.crt')), checkServerIdentity: () => undefined, agent: false, timeout: timeoutMs, ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${String(url)} in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}
