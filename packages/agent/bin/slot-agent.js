#!/usr/bin/env -S node --max-semi-space-size=8
// A young generation of 8 MB rather than V8's 16: the agent idles most of the time and stays small, yet at start-up
// (8–18 slots started at once) it does not spend its time in scavenges. At 1 MB, profiled during a 5 x 8 cluster
// start on a busy host, garbage collection took 14.5 s of an agent's 73 s of CPU.
import { takePriorityEarly } from '@slotctl/shared/priority';

// A restarted agent must be back within its lease: its priority (--nice, default -10) is taken before its modules
// load (at the workload's priority an agent took 7-12 s to reconnect under load). main.js sets it again, checked.
takePriorityEarly(process.argv);
await import('../dist/main.js');
