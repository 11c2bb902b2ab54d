// What watching a big cluster costs (issue 18), measured inside `npm run bench -- --observe`: the leader
// coordinator's /metrics scraped as Prometheus would (over mutual TLS with a reader certificate) while every
// simulated agent heartbeats — time and size — and the status page's time to its first full render in headless
// Chromium (Debian's, driven by Playwright) with that cluster.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { tlsPaths } from '@slotctl/shared';
import type { LocalCluster } from '../tools/local-cluster.js';
import { ensureCertificates } from '../tools/test-pki.js';
import { parseExposition } from '../tools/exposition.js';
import { httpsGet } from '../tools/https-get.js';
import { ROOT } from '../tools/local-cluster.js';

const READER = { role: 'reader', name: 'bench-scraper' } as const;
const SCRAPES = 10;

export interface ObserveFigures {
  scrape: { count: number; msP50: number; msMax: number; bytes: number; series: number; families: number };
  statusJsonBytes: number;
  page: { firstFullRenderMs: number; loadedMs: number; renderMs: number; storeRows: number; storesCount: string; machines: number };
}

async function get(cluster: LocalCluster, index: number, path: string): Promise<{ ms: number; body: string }> {
  const r = await httpsGet(new URL(path, cluster.httpUrl(index)), cluster.pkiDir, READER);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  return r;
}

const round = (n: number) => Math.round(n * 10) / 10;

export async function measureObserve(cluster: LocalCluster, index: number, log: (line: string) => void): Promise<ObserveFigures> {
  ensureCertificates(cluster.pkiDir, [READER]);
  const times: number[] = [];
  let body = '';
  for (let i = 0; i < SCRAPES; i++) {
    const r = await get(cluster, index, '/metrics');
    times.push(r.ms);
    body = r.body;
    await new Promise((res) => setTimeout(res, 500));
  }
  times.sort((a, b) => a - b);
  const families = parseExposition(body);
  const series = [...families.values()].reduce((n, f) => n + f.samples.length, 0);
  const scrape = { count: SCRAPES, msP50: round(times[Math.floor(SCRAPES / 2)]!), msMax: round(times.at(-1)!), bytes: Buffer.byteLength(body), series, families: families.size };
  log(`  /metrics: ${scrape.bytes} bytes, ${series} series in ${scrape.families} families; ${SCRAPES} scrapes p50 ${scrape.msP50} ms, max ${scrape.msMax} ms`);
  writeFileSync(join(ROOT, '.bench', 'metrics-sample.txt'), body);
  const statusJsonBytes = Buffer.byteLength((await get(cluster, index, '/status.json')).body);

  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const id = tlsPaths(cluster.pkiDir, READER);
    const origin = cluster.httpUrl(index);
    const context = await browser.newContext({ ignoreHTTPSErrors: true, clientCertificates: [{ origin, certPath: id.cert, keyPath: id.key }] });
    const page = await context.newPage();
    const t0 = performance.now();
    await page.goto(`${origin}/`);
    const loadedMs = round(performance.now() - t0);
    await page.waitForSelector('body[data-rendered]', { timeout: 60_000 });
    const firstFullRenderMs = round(performance.now() - t0);
    const counts = (await page.evaluate('[document.querySelectorAll("#stores tbody tr").length, document.querySelectorAll("#machines tbody tr").length, Number(document.body.dataset.renderMs)]')) as number[];
    const storesCount = (await page.textContent('#stores-count')) ?? '';
    const figures = { firstFullRenderMs, loadedMs, renderMs: counts[2]!, storeRows: counts[0]!, storesCount, machines: counts[1]! };
    log(`  status page: first full render ${firstFullRenderMs} ms after navigation (page loaded ${loadedMs} ms; its own rendering ${figures.renderMs} ms), ${figures.storeRows} store rows drawn ${storesCount}, ${figures.machines} machines; one frame of the stream ${statusJsonBytes} bytes`);
    return { scrape, statusJsonBytes, page: figures };
  } finally {
    await browser.close();
  }
}
