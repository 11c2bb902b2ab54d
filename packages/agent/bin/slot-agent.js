#!/usr/bin/env -S node --max-semi-space-size=8
// A young generation of 8 MB rather than V8's 16: the agent idles most of the time and stays small, yet at start-up
// (8–18 slots started at once) it does not spend its time in scavenges. At 1 MB, profiled during a 5 x 8 cluster
// start on a busy host, garbage collection took 14.5 s of an agent's 73 s of CPU.
import { readFileSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

// A restarted agent must be back within its lease: its priority (--nice, default -10) is taken before its modules
// load, a second or more of CPU on a busy host (at the workload's priority an agent took 7-12 s to reconnect under
// load). main.js sets it again, checked, and says when it cannot.
const at = process.argv.findIndex((a) => a === '--nice' || a.startsWith('--nice='));
const nice = at < 0 ? -10 : Number(process.argv[at].includes('=') ? process.argv[at].split('=')[1] : process.argv[at + 1]);
try {
  setPriority(nice);
} catch {
  // not allowed, or not a number: main.js reports it
}
// With autogroups a thread's nice value ranks it only within its session's group; the group's own value ranks it
// against the Cyrus slots (each a session of its own) and busy neighbours. Taken here too, when this process leads
// its session (a service; otherwise the group is the caller's), because with the thread's alone module loading still
// ran at the group's 0: 3.0 s from kill to first line beside two busy loops, and the fence fired 0.3 s before the
// new agent held the lease (test/starvation.test.ts, 2026-12-03).
try {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // after the command's ")": state, ppid, pgrp, session
  const session = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  if (session === process.pid && Number.isInteger(nice)) writeFileSync('/proc/self/autogroup', String(nice));
} catch {
  // no autogroups, or not allowed: main.js reports it
}
await import('../dist/main.js');
