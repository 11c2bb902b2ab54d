#!/usr/bin/env node
// V8's default young generation (16 MB): measured with 1,000 agents, 32 MB saved 0.6 s of collection in 75 s but
// raised the peak RSS of a reconnect storm from 303 to 375 MB and the mean scavenge from 9 to 12 ms.
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
