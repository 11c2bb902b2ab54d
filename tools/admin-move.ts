// Moves a store's master by hand as fast as an operator's script could: stop the old master slot, wait until its
// agent reports it stopped (its service IP is then released), apply the cluster file that names the new master.
// Run inside the coordinator's namespace; one JSON line with the times on stdout.
//   admin-move.ts COORDINATOR OLD_MASTER_SLOT CLUSTER_FILE      (SLOTCTL_TLS_CA/CERT/KEY: the operator's certificate)
import { readFileSync } from 'node:fs';
import { Admin } from '@slotctl/cli';
import { operatorFromEnv } from './test-pki.js';

const [target, slot, file] = process.argv.slice(2);
const admin = new Admin(target!, 10_000, operatorFromEnv()); // certificate: SLOTCTL_TLS_* (tools/test-pki.ts)
const started = Date.now();
await admin.setSlotRun({ slot: slot!, run: false, reason: 'admin-move' });
for (;;) {
  const s = (await admin.listSlots({ machine: '' })).slots.find((x) => x.name === slot);
  if (s?.state === 'STOPPED') break;
  await new Promise((r) => setTimeout(r, 10));
}
const stopped = Date.now();
const reply = await admin.applyCluster({ text: readFileSync(file!, 'utf8'), fileName: file!, dryRun: false, prune: false });
const applied = Date.now();
admin.close();
console.log(JSON.stringify({ ok: reply.ok, started, stopped, applied }));
