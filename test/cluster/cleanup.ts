// `pnpm test:cleanup [--id ID] [--dir DIR]`: removes what a killed namespace-cluster run left behind — processes
// named in the PID files of its directories (checked against their command lines) and its namespaces. Without
// arguments: every harness directory under the temp dir and every namespace with the harness prefix.
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArg } from '../../bench/common.js';
import { NETNS_PREFIX, cleanupNetns } from './netns-cleanup.js';

const id = benchArg('id', '');
const onlyDir = benchArg('dir', '');
// every test's directory is slotctl-NAME-XXXXXX (support/fixtures tempDir); the cluster's hold a pids/ folder
const dirs = onlyDir ? [onlyDir] : readdirSync(tmpdir()).filter((d) => d.startsWith('slotctl-') && existsSync(join(tmpdir(), d, 'pids'))).map((d) => join(tmpdir(), d));
const prefix = id ? `${NETNS_PREFIX}${id}-` : NETNS_PREFIX;
let processes = 0;
for (const dir of dirs) processes += cleanupNetns(dir, `${prefix}\0`).processes; // processes only
const { namespaces } = cleanupNetns(undefined, prefix);
console.log(`test:cleanup: ${processes} process(es) stopped, ${namespaces.length} namespace(s) removed${namespaces.length ? `: ${namespaces.join(', ')}` : ''}`);
