#!/usr/bin/env -S node --max-semi-space-size=32
// A young generation of 32 MB rather than V8's 16: a thousand agents' heartbeats and reports are short-lived garbage
// at megabytes a second. Node flags of the daemon live here, on the shebang line (tools/local-cluster.ts reads them
// when it runs the daemon under other flags).
import { setPriority } from 'node:os';

// A restart is when leases are at stake: the daemon's priority (--nice, default -10) is taken before its modules
// load, which is a second or more of CPU on a busy host (at the workload's priority, a restart under load took 9 s to
// listen). main.js sets it again, checked, and says when it cannot.
const at = process.argv.findIndex((a) => a === '--nice' || a.startsWith('--nice='));
const nice = at < 0 ? -10 : Number(process.argv[at].includes('=') ? process.argv[at].split('=')[1] : process.argv[at + 1]);
try {
  setPriority(nice);
} catch {
  // not allowed, or not a number: main.js reports it
}
await import('../dist/daemon/main.js');
