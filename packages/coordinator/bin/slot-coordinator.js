#!/usr/bin/env node
// V8's default young generation (16 MB): measured with 1,000 agents, 32 MB saved 0.6 s of collection in 75 s but
// raised the peak RSS of a reconnect storm from 303 to 375 MB and the mean scavenge from 9 to 12 ms.
import { takePriorityEarly } from '@slotctl/shared/priority';

// A restart is when leases are at stake: the daemon's priority (--nice, default -10) is taken before its modules
// load (at the workload's priority, a restart under load took 9 s to listen). main.js sets it again, checked.
takePriorityEarly(process.argv);
await import('../dist/daemon/main.js');
