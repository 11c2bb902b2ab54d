// The test harnesses' certificates, made in one process (sync callers run it with execaSync; a certificate costs
// ~2 ms, a process ~0.5 s): `node --import tsx tools/pki-setup.ts DIR ROLE:NAME…` creates the CAs in DIR if there are
// none (the cluster CA and the etcd CA; an etcd CA alone in a directory from before it) and issues every ROLE-NAME that
// is missing. Callers hold DIR/.pki-setup.lock (tools/test-pki.ts), so parallel test files never write one at once.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { caPaths, initEtcdCa, initPki, issueToDirectory, type Role } from '@slotctl/shared/pki';

const [dir, ...wanted] = process.argv.slice(2);
if (!dir) throw new Error('usage: pki-setup.ts DIR ROLE:NAME…');
if (!existsSync(caPaths(dir, 'cluster').key)) await initPki(dir, { name: 'slotctl test CA' });
else if (!existsSync(caPaths(dir, 'etcd').key)) await initEtcdCa(dir, { name: 'slotctl test etcd CA' });
for (const spec of wanted) {
  const [role, name] = spec.split(':') as [Role, string];
  if (!existsSync(join(dir, `${role}-${name}.crt`))) await issueToDirectory(dir, { role, name });
}
