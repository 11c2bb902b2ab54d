// The test harnesses' certificates, made in one process (sync callers run it with execaSync; a certificate costs
// ~2 ms, a process ~0.5 s): `node --import tsx tools/pki-setup.ts DIR ROLE:NAME…` creates the CA in DIR if there is
// none and issues every ROLE-NAME that is missing.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { initPki, issueToDirectory, type Role } from '@slotctl/shared/pki';

const [dir, ...wanted] = process.argv.slice(2);
if (!dir) throw new Error('usage: pki-setup.ts DIR ROLE:NAME…');
if (!existsSync(join(dir, 'ca.key'))) await initPki(dir, { name: 'slotctl test CA' });
for (const spec of wanted) {
  const [role, name] = spec.split(':') as [Role, string];
  if (!existsSync(join(dir, `${role}-${name}.crt`))) await issueToDirectory(dir, { role, name });
}
