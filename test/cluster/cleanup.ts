// `pnpm test:cleanup`: removes what a killed namespace-cluster run left behind — processes named in the PID files
// of its directories (checked against their command lines) and every namespace with the harness prefix.
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETNS_PREFIX, cleanupNetns } from './netns.js';

const dirs = readdirSync(tmpdir()).filter((d) => d.startsWith('slotctl-netns')).map((d) => join(tmpdir(), d));
let processes = 0;
for (const dir of dirs) processes += cleanupNetns(dir, `${NETNS_PREFIX}-none`).processes;
const { namespaces } = cleanupNetns(undefined, NETNS_PREFIX);
console.log(`test:cleanup: ${processes} process(es) stopped, ${namespaces.length} namespace(s) removed${namespaces.length ? `: ${namespaces.join(', ')}` : ''}`);
