// `pnpm test:cleanup [--id ID] [--dir DIR]`: removes what a killed test run left behind — processes named in the PID
// files of its directories (checked against their command lines), Cyrus slots under them, and its namespaces. Without
// arguments: every harness directory under the temp dir, every namespace with the harness prefix and every tracing
// instance of the split-brain watch, the soak's libfaketime objects in /dev/shm that no process maps, and a slotctl
// package a killed package test left installed (only one a test marked as its own: support/package-install.ts).
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArg } from '../../bench/common.js';
import { removeUnusedFaketimeObjects } from '../soak/clock.js';
import { purgeTestInstall } from '../support/package-install.js';
import { removeWatchInstances } from './master-watch.js';
import { NETNS_PREFIX, cleanupNetns, unmountUnder } from './netns-cleanup.js';

const id = benchArg('id', '');
const onlyDir = benchArg('dir', '');
// every test's directory is slotctl-NAME-XXXXXX (support/fixtures tempDir): a namespace cluster's holds a pids/
// folder, and any of them (a loopback cluster's too) may hold Cyrus slots whose cyrmaster outlived a killed run (it
// runs in a session of its own, so killing the run's process group leaves it)
const dirs = onlyDir ? [onlyDir] : readdirSync(tmpdir(), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name.startsWith('slotctl-')).map((d) => join(tmpdir(), d.name));
const prefix = id ? `${NETNS_PREFIX}${id}-` : NETNS_PREFIX;
let processes = 0;
let mounts = 0;
for (const dir of dirs) {
  processes += cleanupNetns(dir, `${prefix}\0`).processes; // processes only
  mounts += unmountUnder(dir).length; // the soak's tmpfs partitions
}
const { namespaces } = cleanupNetns(undefined, prefix);
const instances = id ? [] : removeWatchInstances(); // the split-brain watch's tracing instances
const faketime = id ? [] : removeUnusedFaketimeObjects(); // the soak's clock objects nobody maps any more
const purged = id || onlyDir ? false : await purgeTestInstall(); // a package test's install, never anybody else's
console.log(`test:cleanup: ${processes} process(es) stopped, ${namespaces.length} namespace(s) removed${namespaces.length ? `: ${namespaces.join(', ')}` : ''}${instances.length ? `, ${instances.length} tracing instance(s) removed` : ''}${mounts ? `, ${mounts} mount(s) removed` : ''}${faketime.length ? `, ${faketime.length} libfaketime object(s) removed` : ''}${purged ? ', a package test\'s slotctl install purged' : ''}`);
