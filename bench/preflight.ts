// bench/preflight: the checks before start (packages/agent/src/preflight) for a machine's slots, as a desired state
// runs them: 18 slots checked at once (slots converge in parallel), each walking from / to its configs, partitions
// and sync dir and reading the listeners. p50 and max over --runs passes; one more pass with one slot's port taken
// (the only case that looks through /proc/*/fd). Prints the figures and writes them; nothing is asserted.
//
//   npm run bench:preflight -- [--runs 20] [--slots 18]      (writes bench/results/preflight.json)
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflight } from '../packages/agent/src/preflight/checks.js';
import { cyrusOwner } from '../packages/agent/src/slot/files.js';
import { CONF_SUBDIRS, slotLayout } from '../packages/agent/src/slot/layout.js';
import { benchArg } from './common.js';

const runs = Number(benchArg('runs', '20'));
const slots = Number(benchArg('slots', '18'));
const dir = mkdtempSync(join(tmpdir(), 'slotctl-bench-preflight-'));
chmodSync(dir, 0o755); // mkdtemp's 0700 is exactly what the checks refuse
const cyrus = await cyrusOwner();

const layouts = Array.from({ length: slots }, (_, i) => {
  const name = `s${String(i + 1).padStart(2, '0')}`;
  const layout = slotLayout(join(dir, 'hdd', name, 'data'), join(dir, 'ssd', name, 'meta'));
  for (const d of [layout.etcDir, layout.metaPartition, layout.runDir, layout.dataPartition, ...CONF_SUBDIRS.map((s) => join(layout.confDir, s))]) mkdirSync(d, { recursive: true, mode: 0o755 });
  for (const f of [layout.imapdConf, layout.cyrusConf]) writeFileSync(f, '\n', { mode: 0o640 });
  if (cyrus) for (const d of [layout.metaPath, layout.dataPath, layout.confDir, layout.syncDir, layout.metaPartition, layout.dataPartition]) chownSync(d, cyrus.uid, cyrus.gid);
  if (cyrus) for (const f of [layout.imapdConf, layout.cyrusConf]) chownSync(f, 0, cyrus.gid);
  const conf = `SERVICES {\n  imap cmd="imapd" listen="127.0.52.${i + 1}:1143"\n  syncserver cmd="sync_server" listen="127.0.52.${i + 1}:2005"\n}\n`;
  return { layout, cyrusConf: conf, ownMaster: undefined };
});

const pass = async () => {
  const t0 = performance.now();
  const problems = await Promise.all(layouts.map((l) => preflight(l)));
  return { ms: performance.now() - t0, problems: problems.flat() };
};

try {
  const first = await pass();
  if (first.problems.length) throw new Error(`unexpected problems: ${first.problems.join('; ')}`);
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    await new Promise((res) => setTimeout(res, 600)); // a fresh read of /proc/net/tcp each pass
    times.push((await pass()).ms);
  }
  times.sort((a, b) => a - b);
  // one slot's port taken: the listener's owner is looked up in /proc/*/fd
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(1143, '127.0.52.1', r));
  await new Promise((res) => setTimeout(res, 600));
  const taken = await pass();
  server.close();
  const processes = (await import('node:fs')).readdirSync('/proc').filter((p) => /^\d+$/.test(p)).length;
  const result = { bench: 'preflight', at: new Date().toISOString(), slots, runs, firstPassMs: +first.ms.toFixed(1), p50Ms: +times[Math.floor(times.length / 2)]!.toFixed(1), maxMs: +times.at(-1)!.toFixed(1), withOnePortTakenMs: +taken.ms.toFixed(1), takenProblem: taken.problems[0], processes };
  console.log(JSON.stringify(result, null, 1));
  const out = new URL('./results/preflight.json', import.meta.url);
  (await import('node:fs')).writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
