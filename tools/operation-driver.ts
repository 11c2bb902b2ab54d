// Runs next to the coordinator (inside its namespace in benchmarks): one long-lived Admin client, commands as JSON
// lines on stdin, answers as JSON lines on stdout, so that timing a switchover does not include starting slotctl.
//   {"ping":true}                         → {"ok":true} once the coordinator answered (the connection is up)
//   {"switchover":"a01"}                 → {"operation":{…}} when it has ended (polled every 10 ms)
//   {"start":"a01"}                      → {"operation":{…}} as soon as it was accepted (or refused)
//   {"cancel":"op-id"}                   → {"operation":{…}} once the cancellation is recorded
//   {"drain":"m2","parallel":2}           → {"operation":{…}}
//   {"undrain":"m2"}                      → {"ok":true}
//   {"waiting":"m2","kind":"drain"}       → {"said":[…]} every waiting sentence of that machine's running operations
//                                           of that kind, polled every 10 ms until one ran and none runs (or 120 s)
//   {"moves":[{"store":"v05","to":"m3"}]} → {"ids":[…],"said":[…],"most":N} replica moves started back to back (their
//                                           addresses from the targets' slot_ips), then polled every 10 ms until all
//                                           ended (or 300 s): every waiting sentence, and the most copying at once
//   {"watch":"op-id","limitMs":600000}   → {"operation":{…},"samples":N,"copies":[…],"paused":[…],"most":N} the
//                                           operation (a relocation) and every store, polled every 100 ms until it
//                                           ended: `copies` names each sample where a store had not two slots on two
//                                           machines; `paused` each store seen not serving on both slots for over
//                                           3 s outside a running switchover of it or a move's create (which restarts
//                                           a master promoted in place); `expectedPause` the longest inside those
import { createInterface } from 'node:readline';
import type { OperationInfo__Output } from '@slotctl/shared';
import { Admin } from '@slotctl/cli';
import { operatorFromEnv } from './test-pki.js';

// its certificate from SLOTCTL_TLS_CA/CERT/KEY (tools/test-pki.ts tlsEnv)
const admin = new Admin(process.argv[2] ?? '127.0.0.1:7400', 30_000, operatorFromEnv());

async function until(id: string): Promise<OperationInfo__Output> {
  for (;;) {
    const op = (await admin.getOperation(id)).operation!;
    if (op.state !== 'running') return op;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Follows a relocation, sampling every store: never fewer than two copies, never paused outside a switchover. */
async function watch(id: string, limitMs: number) {
  const copies: string[] = [];
  const paused: string[] = [];
  const since = new Map<string, number>();
  // pauses inside a switchover or a move's create: measured, the longest reported
  const pauses = new Map<string, { from: number; why: string }>();
  let longest = 0;
  let longestWhy = '';
  let samples = 0;
  let most = 0;
  for (const until = Date.now() + limitMs; ; await new Promise((r) => setTimeout(r, 100))) {
    const op = (await admin.getOperation(id)).operation!;
    // a switchover stops both slots a moment; a move's create restarts a master that was promoted in place (the Cyrus
    // SIGHUP limit: its second sync channel cannot be added by a reload), so its store pauses then too
    const switching = new Set(op.children.filter((c) => c.state === 'running' && (c.kind === 'switchover' || (c.kind === 'move-replica' && ['preflight', 'create'].includes(c.step)))).map((c) => c.store));
    const expected = new Map(op.children.filter((c) => c.state === 'running').map((c) => [c.store, `${c.kind} ${c.step}`]));
    most = Math.max(most, op.children.filter((c) => c.state === 'running').length);
    const at = new Date().toISOString();
    for (const s of (await admin.listStores()).stores) {
      const m = s.master;
      const r = s.replica;
      if (!m?.name || !r?.name || m.machine === r.machine) copies.push(`${at} ${s.name}: ${m?.name ?? '-'} on ${m?.machine ?? '-'}, ${r?.name ?? '-'} on ${r?.machine ?? '-'}`);
      const serving = m?.state === 'SERVING' && r?.state === 'SERVING';
      if (!serving && switching.has(s.name)) {
        const first = pauses.get(s.name) ?? { from: Date.now(), why: expected.get(s.name) ?? '' };
        pauses.set(s.name, first);
        if (Date.now() - first.from > longest) {
          longest = Date.now() - first.from;
          longestWhy = `${s.name} in ${first.why}`;
        }
      } else if (serving) pauses.delete(s.name);
      if (serving || switching.has(s.name)) since.delete(s.name);
      else {
        const first = since.get(s.name) ?? Date.now();
        since.set(s.name, first);
        if (Date.now() - first > 3000) paused.push(`${at} ${s.name}: ${m?.name} ${m?.state}, ${r?.name} ${r?.state} for ${Date.now() - first} ms outside a switchover`);
      }
    }
    samples++;
    const expectedPause = { longestMs: longest, where: longestWhy };
    if (op.state !== 'running') return { operation: op, samples, copies, paused, most, expectedPause };
    if (Date.now() > until) return { operation: op, samples, copies, paused, most, expectedPause, timedOut: true };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const cmd = JSON.parse(line) as { watch?: string; limitMs?: number; ping?: boolean; switchover?: string; start?: string; cancel?: string; drain?: string; parallel?: number; undrain?: string; waiting?: string; kind?: string; moves?: { store: string; to: string }[] };
  try {
    if (cmd.ping) {
      await admin.listMachines();
      console.log(JSON.stringify({ ok: true }));
    } else if (cmd.start) {
      const reply = await admin.switchover({ store: cmd.start, dryRun: false, timeoutMs: 0, maxBacklogMailboxes: 0 });
      console.log(JSON.stringify({ operation: reply.operation }));
    } else if (cmd.cancel) {
      console.log(JSON.stringify({ operation: (await admin.cancelOperation(cmd.cancel)).operation }));
    } else if (cmd.switchover) {
      const reply = await admin.switchover({ store: cmd.switchover, dryRun: false, timeoutMs: 0, maxBacklogMailboxes: 0 });
      console.log(JSON.stringify({ operation: await until(reply.operation!.id) }));
    } else if (cmd.drain) {
      const reply = await admin.drainMachine({ machine: cmd.drain, parallel: cmd.parallel ?? 0, timeoutMs: 0, dryRun: false });
      console.log(JSON.stringify({ operation: await until(reply.operation!.id) }));
    } else if (cmd.waiting) {
      const said = new Set<string>();
      let seen = false;
      for (const until = Date.now() + 120_000; Date.now() < until; await new Promise((r) => setTimeout(r, 10))) {
        const running = ((await admin.listOperations({ machine: cmd.waiting })).operations ?? []).filter((op) => op.kind === cmd.kind && op.state === 'running');
        for (const op of running) if (op.waiting) said.add(op.waiting);
        if (running.length) seen = true;
        else if (seen) break;
      }
      console.log(JSON.stringify({ said: [...said], seen }));
    } else if (cmd.moves) {
      const ids: string[] = [];
      for (const m of cmd.moves) ids.push((await admin.moveReplica({ store: m.store, toMachine: m.to, ip: '', dataPath: '', metaPath: '', dryRun: false })).operation!.id);
      const said = new Set<string>();
      let most = 0;
      for (const until = Date.now() + 300_000; Date.now() < until; await new Promise((r) => setTimeout(r, 10))) {
        const ops = await Promise.all(ids.map(async (id) => (await admin.getOperation(id)).operation!));
        for (const op of ops) if (op.waiting) said.add(op.waiting);
        most = Math.max(most, ops.filter((op) => op.state === 'running' && ['create', 'seed', 'verify'].includes(op.step)).length);
        if (ops.every((op) => op.state !== 'running')) break;
      }
      console.log(JSON.stringify({ ids, said: [...said], most }));
    } else if (cmd.watch) {
      console.log(JSON.stringify(await watch(cmd.watch, cmd.limitMs ?? 600_000)));
    } else if (cmd.undrain) {
      await admin.undrainMachine(cmd.undrain);
      console.log(JSON.stringify({ ok: true }));
    }
  } catch (err) {
    console.log(JSON.stringify({ error: (err as Error).message }));
  }
}
admin.close();
