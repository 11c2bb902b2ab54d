// What an operator watches, on a loopback cluster with real Cyrus and real mail: the coordinator's /metrics (read
// back by a parser and checked by Prometheus' own, promtool) move with a switchover, and the live status page in
// headless Chromium (Debian's, driven by Playwright) loads with a reader's client certificate, shows every store
// and shows the new master without a reload.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseExposition, value, type Family } from '../tools/exposition.js';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { ensureCertificates } from '../tools/test-pki.js';
import { httpsGet } from '../tools/https-get.js';
import { tlsPaths } from '@slotctl/shared';
import { removeDir, tempDir, twoMachineCluster } from './support/fixtures.js';
import { loopbackBlock } from './support/loopback-blocks.js';
import { deliver, inboxSubjects } from './support/mail.js';

const { net: NET, prefix: PREFIX } = loopbackBlock(import.meta.url);
const dir = tempDir('observe');
const cluster = new LocalCluster({ dir });
const READER = { role: 'reader', name: 'prometheus' } as const;
const STORE = `${PREFIX}01`;
const CHROMIUM = '/usr/bin/chromium';
let browser: Browser | undefined;

/** GET a coordinator endpoint over mutual TLS as `id` (null: without a client certificate). */
const get = (path: string, id: { role: string; name: string } | null = READER) => httpsGet(new URL(path, cluster.httpUrl()), cluster.pkiDir, id, 10_000);

async function scrape(): Promise<Map<string, Family>> {
  const r = await get('/metrics');
  expect(r.status).toBe(200);
  return parseExposition(r.body);
}

beforeAll(async () => {
  ensureCertificates(cluster.pkiDir, [READER]);
  await cluster.bringUp(twoMachineCluster(dir, NET, PREFIX), ['m1', 'm2'], [`${STORE}-m1`, `${STORE}-m2`]);
});

afterAll(async () => {
  await browser?.close();
  await cluster.stopAll();
  removeDir(dir);
});

describe('what an operator watches', () => {
  it('serves metrics a reader may scrape, in an exposition Prometheus parses, and readiness; nothing without a certificate', async () => {
    const text = (await get('/metrics')).body;
    // Prometheus' own parser and linter (Debian's prometheus package: scripts/setup.sh)
    const lint = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
    expect(lint.exitCode, `${lint.stdout}${lint.stderr}`).toBe(0);
    const f = parseExposition(text);
    expect(value(f, 'slotctl_coordinator_leader')).toBe(1);
    expect(value(f, 'slotctl_machine_state', { machine: 'm1', state: 'up' })).toBe(1);
    expect(value(f, 'slotctl_store_master', { store: STORE, machine: 'm1' })).toBe(1);
    expect(value(f, 'slotctl_agents_connected')).toBe(2);
    expect(JSON.parse((await get('/readyz')).body)).toMatchObject({ ready: true, leader: true });
    expect((await get('/leader')).status).toBe(200);
    expect((await get('/livez')).body).toBe('ok\n');
    expect((await get('/metrics', null)).status).toBe(401);
  });

  it('moves the operations counter and the epoch and master of a store with a switchover; the mail follows', async () => {
    const before = await scrape();
    const epoch = value(before, 'slotctl_store_epoch', { store: STORE })!;
    const switched = value(before, 'slotctl_operations_total', { kind: 'switchover', outcome: 'succeeded' }) ?? 0;
    await deliver(`127.${NET}.3.1`, 2003, [{ user: 'olive', subject: 'before the switchover' }]);
    const r = await cluster.slotctl(['store', 'switchover', STORE, '--wait']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const after = await waitFor('the switchover in the metrics', async () => {
      const f = await scrape();
      return (value(f, 'slotctl_operations_total', { kind: 'switchover', outcome: 'succeeded' }) ?? 0) > switched ? f : undefined;
    }, 15_000, 200);
    expect(value(after, 'slotctl_store_epoch', { store: STORE })).toBeGreaterThan(epoch);
    expect(value(after, 'slotctl_store_master', { store: STORE, machine: 'm2' })).toBe(1);
    expect(value(after, 'slotctl_store_master', { store: STORE, machine: 'm1' })).toBeUndefined();
    expect(value(after, 'slotctl_operation_duration_seconds', { kind: 'switchover', outcome: 'succeeded' }, '_count')).toBeGreaterThanOrEqual(1);
    expect(value(after, 'slotctl_events_total', { kind: 'store.master-changed' })).toBeGreaterThanOrEqual(1);
    // the store's mail is read from its new master
    await waitFor('the message on the new master', async () => ((await inboxSubjects(`127.${NET}.3.1`, 1143, 'olive')).includes('before the switchover') ? true : undefined), 15_000, 200);
  });

  it('shows every store live in a browser with a reader certificate, the new master without a reload, on a phone', async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // as root in a container; no network beyond loopback here, so nothing in the background either
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const origin = cluster.httpUrl();
    const cert = tlsPaths(cluster.pkiDir, READER);
    // the client certificate is what is tested; the coordinator's own is issued for its name, not 127.0.0.1
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 390, height: 844 }, clientCertificates: [{ origin, certPath: cert.cert, keyPath: cert.key }] });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    const response = await page.goto(`${origin}/`);
    expect(response?.status()).toBe(200);
    for (const store of [`${PREFIX}01`, `${PREFIX}02`]) await page.waitForSelector(`tr[data-store="${store}"]`, { timeout: 15_000 });
    const master = await page.getAttribute(`tr[data-store="${STORE}"]`, 'data-master');
    const other = master === 'm1' ? 'm2' : 'm1';
    // a mark that a reload would wipe
    await page.evaluate('window.mark = 42');
    const r = await cluster.slotctl(['store', 'switchover', STORE, '--wait']);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    await page.waitForSelector(`tr[data-store="${STORE}"][data-master="${other}"]`, { timeout: 15_000 });
    expect(await page.evaluate('window.mark')).toBe(42);
    // usable on a phone: the page does not scroll sideways (wide tables scroll in their own box)
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    const shot = join(dir, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
    // without a certificate the browser is refused, and told what to get
    const bare = await browser.newContext({ ignoreHTTPSErrors: true });
    const refused = await (await bare.newPage()).goto(`${origin}/`);
    expect(refused?.status()).toBe(401);
    expect(await refused?.text()).toContain('slotctl pki issue operator NAME --role reader');
    await bare.close();
    await context.close();
  });
});
