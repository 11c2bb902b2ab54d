// `npm run demo`: a coordinator (embedded SQLite) and 3 agents on this host's loopback addresses running real
// Cyrus slots: 6 stores, each a master and a replica on two machines. Delivers a test message, reads it back from
// the replica, shows a live `slotctl status`. `--once` prints one status and shuts everything down.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, LocalCluster, ROOT, demoClusterYaml, killSlotsUnder, waitFor } from '../tools/local-cluster.js';
import { stopSyslogdStartedAfterNow } from '../tools/syslogd.js';
import { deliver, inboxSubjects } from '../test/support/mail.js';
import { ensureCertificates } from '../tools/test-pki.js';
import { tlsPaths } from '@slotctl/shared';

/** A reader's certificate for a browser (PKCS#12, which browsers import), when openssl is there to make it. */
async function browserCertificate(pkiDir: string): Promise<string | undefined> {
  const reader = { role: 'reader', name: 'demo-browser' };
  ensureCertificates(pkiDir, [reader]);
  const p = tlsPaths(pkiDir, reader);
  const out = join(pkiDir, 'reader-demo-browser.p12');
  const made = await execa('openssl', ['pkcs12', '-export', '-in', p.cert, '-inkey', p.key, '-certfile', p.ca, '-name', 'slotctl demo reader', '-passout', 'pass:slotctl-demo', '-out', out], { reject: false }).catch(() => undefined);
  return made?.exitCode === 0 ? out : undefined;
}

const once = process.argv.includes('--once');
const dir = join(ROOT, '.demo');
const machines = ['m1', 'm2', 'm3'];

killSlotsUnder(dir); // a demo stopped hard before: its Cyrus slots and fence processes
rmSync(dir, { recursive: true, force: true });
const cluster = new LocalCluster({ dir });
const stopSyslogd = stopSyslogdStartedAfterNow();
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\ndemo: stopping agents (and their Cyrus slots) and the coordinator…');
    await cluster.stopAll();
    stopSyslogd();
    console.log('demo: everything stopped.');
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  console.log(`demo: starting the coordinator (database ${join(dir, 'coordinator', 'coordinator.db')})`);
  await cluster.startCoordinator();
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, demoClusterYaml(join(dir, 'srv'), machines.length, 6));
  console.log(`demo: slotctl cluster apply ${file}`);
  const applied = await cluster.slotctl(['cluster', 'apply', file]);
  process.stdout.write(`${applied.stdout}\n`);
  if (applied.exitCode !== 0) throw new Error(`cluster apply failed: ${applied.stderr || applied.stdout}`);

  console.log(`demo: starting agents ${machines.join(', ')}; each runs its Cyrus slots (one cyrmaster per slot)`);
  const t0 = Date.now();
  for (const m of machines) cluster.startAgent(m);
  // a fresh machine may be busy: agents (node start-up, 12 Cyrus instances) get a minute, not seconds
  await cluster.waitForMachines('up', machines, 60_000);
  await waitFor('every store to serve with its replica in step', async () => {
    const status = await cluster.client().status();
    return status.healthy ? true : undefined;
  }, 60_000, 200);
  console.log(`demo: 6 stores serving after ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const stores = (await cluster.client().listStores()).stores;
  const s01 = stores.find((s) => s.name === 's01')!;
  await deliver(s01.serviceIp, 2003, [{ user: 'alice', subject: 'hello from the slotctl demo' }]);
  const replicaIp = s01.replica!.ip;
  const seen = await waitFor('the test message on the replica', async () => {
    const subjects = await inboxSubjects(replicaIp, 1143, 'alice');
    return subjects.includes('hello from the slotctl demo') ? subjects : undefined;
  }, 60_000, 100);
  console.log(`demo: delivered a message to alice on store s01 (${s01.serviceIp}) and read it back from its replica ${s01.replica!.name} (${replicaIp}): ${seen.length} message(s)`);

  console.log(`demo: planned switchover of s01 (slotctl store switchover s01 --wait): stop the master, replay, verify, flip, start both`);
  const moved = await cluster.slotctl(['store', 'switchover', 's01', '--wait']);
  process.stdout.write(`${moved.stdout}\n`);
  if (moved.exitCode !== 0) throw new Error(`switchover failed: ${moved.stderr || moved.stdout}`);
  const after = await inboxSubjects(s01.serviceIp, 1143, 'alice');
  console.log(`demo: alice's message read back through s01's service IP from its new master: ${after.length} message(s)`);

  console.log('demo: what losing m1 would do now (slotctl plan whatif --lose m1): which peers take its masters');
  const whatif = await cluster.slotctl(['plan', 'whatif', '--lose', 'm1']);
  process.stdout.write(`${whatif.stdout}\n`);
  console.log('demo: the switchover left the masters unbalanced; slotctl plan rebalance --apply restores the balance with the fewest switchovers');
  const rebalance = await cluster.slotctl(['plan', 'rebalance', '--apply']);
  process.stdout.write(`${rebalance.stdout}\n`);
  if (rebalance.exitCode !== 0) throw new Error(`rebalance failed: ${rebalance.stderr || rebalance.stdout}`);

  const status = await cluster.slotctl(['status']);
  process.stdout.write(`${status.stdout}\n`);
  console.log(`
demo: logs are in ${join(dir, 'logs')}; Cyrus logs per slot in /run/slotctl/syslog. Every link is mutual TLS:
the demo's CA and certificates are in ${cluster.pkiDir} (admin-harness is an operator with the admin role). Try, in another terminal:
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} status
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} slot show s01-m1
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} store switchover s02 --wait
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} machine drain m1      (then: machine undrain m1)
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} operations list
  pnpm exec slotctl --coordinator ${cluster.target} --tls-dir ${cluster.pkiDir} plan whatif --lose m2   (plan rebalance, plan layout --count 2)
  # deliver a message by LMTP to store s01's service IP, then read it over IMAP (any password) the same way:
  python3 -c "import smtplib; smtplib.LMTP('${s01.serviceIp}', 2003).sendmail('me@example.org', ['bob@example.org'], 'Subject: hi\\n\\nhello\\n')"
  curl -s 'imap://${s01.serviceIp}:1143/INBOX;UID=1' -u bob:any`);
  const web = cluster.httpUrl();
  const port = new URL(web).port;
  const p12 = await browserCertificate(cluster.pkiDir);
  const reader = tlsPaths(cluster.pkiDir, { role: 'reader', name: 'demo-browser' });
  console.log(`
demo: the live status page and the metrics (mutual TLS: a client certificate with role reader or higher):
  status page   ${web}/      ${p12 ? `import ${p12} (password slotctl-demo) into the browser, and ${cluster.pkiDir}/ca.crt as an authority` : `(import the reader certificate ${reader.cert} into the browser)`}
                (its certificate names the coordinator "co", not 127.0.0.1: the browser warns unless co maps to 127.0.0.1 in /etc/hosts and https://co:${port}/ is opened)
  metrics       ${web}/metrics     health: ${web}/readyz, ${web}/livez, ${web}/leader
  agents        ${(await Promise.all(machines.map(async (m) => `${await cluster.agentHttpUrl(m)}/metrics`))).join('  ')}
  # the coordinator's certificate names it "co" (not an address): tell curl where "co" is
  curl --cacert ${reader.ca} --cert ${reader.cert} --key ${reader.key} --resolve co:${port}:127.0.0.1 https://co:${port}/metrics`);
  if (once) await shutdown(0);

  console.log('demo: live status follows; Ctrl-C stops the demo.');
  await new Promise((r) => setTimeout(r, 5000));
  await execa('node', [BIN.slotctl, '--coordinator', cluster.target, '--tls-dir', cluster.pkiDir, 'status', '--watch', '1s'], { stdio: 'inherit', reject: false });
  await shutdown(0);
} catch (err) {
  console.error(`demo: ${(err as Error).message}`);
  console.error(`demo: logs are in ${join(dir, 'logs')}`);
  await shutdown(1);
}
