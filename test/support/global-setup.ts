// Runs once around the whole suite: slot-syslogd is started on demand by the first agent and shared by all;
// stop it at the end (by the PID it wrote) if this run started it. The run's certificates are made here once (the CAs,
// the harness coordinator, its etcd client and operator, agents m1–m12): every cluster of the run uses them, others are
// issued on demand.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopSyslogdStartedAfterNow } from '../../tools/syslogd.js';
import { HARNESS_COORDINATOR, HARNESS_ETCD_CLIENT, HARNESS_OPERATOR, ensureCertificates } from '../../tools/test-pki.js';

const ONCE = Symbol.for('slotctl.global-setup');

export default function setup(): () => void {
  // vitest calls a global setup for the root config and again for the projects that inherit it: one is enough
  const g = globalThis as { [ONCE]?: boolean };
  if (g[ONCE]) return () => undefined;
  g[ONCE] = true;
  const pki = mkdtempSync(join(tmpdir(), 'slotctl-pki-'));
  ensureCertificates(pki, [HARNESS_COORDINATOR, HARNESS_ETCD_CLIENT, HARNESS_OPERATOR, ...Array.from({ length: 12 }, (_, i) => ({ role: 'agent', name: `m${i + 1}` }))]);
  process.env.SLOTCTL_TEST_PKI_DIR = pki;
  const stopSyslogd = stopSyslogdStartedAfterNow();
  return () => {
    stopSyslogd();
    rmSync(pki, { recursive: true, force: true });
  };
}
