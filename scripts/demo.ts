// `npm run demo`: a coordinator (embedded SQLite) and 3 agents on this host's loopback addresses, an example
// cluster of 6 stores, and a live `slotctl status`. `--once` prints one status and shuts everything down.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { BIN, LocalCluster, ROOT, demoClusterYaml } from '../tools/local-cluster.js';

const once = process.argv.includes('--once');
const dir = join(ROOT, '.demo');
const machines = ['m1', 'm2', 'm3'];

rmSync(dir, { recursive: true, force: true });
const cluster = new LocalCluster({ dir });
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    console.log('\ndemo: stopping agents and coordinator…');
    await cluster.stopAll();
    console.log('demo: everything stopped.');
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

try {
  console.log(`demo: starting the coordinator (database ${join(dir, 'coordinator', 'coordinator.db')})`);
  await cluster.startCoordinator();
  const file = join(dir, 'cluster.yaml');
  writeFileSync(file, demoClusterYaml(join(dir, 'srv'), machines.length, 6));
  console.log(`demo: slotctl cluster apply ${file}`);
  const applied = await cluster.slotctl(['cluster', 'apply', file]);
  process.stdout.write(`${applied.stdout}\n`);
  if (applied.exitCode !== 0) throw new Error(`cluster apply failed: ${applied.stderr || applied.stdout}`);

  console.log(`demo: starting agents ${machines.join(', ')}`);
  for (const m of machines) cluster.startAgent(m);
  await cluster.waitForMachines('up', machines);

  const status = await cluster.slotctl(['status']);
  process.stdout.write(`${status.stdout}\n`);
  console.log(`
demo: logs are in ${join(dir, 'logs')}. Try, in another terminal:
  pnpm exec slotctl --coordinator ${cluster.target} status
  pnpm exec slotctl --coordinator ${cluster.target} events
(Slots show "absent": the agents do not run Cyrus yet.)`);
  if (once) await shutdown(0);

  console.log('demo: live status follows; Ctrl-C stops the demo.');
  await new Promise((r) => setTimeout(r, 3000));
  const watch = execa('node', [BIN.slotctl, '--coordinator', cluster.target, 'status', '--watch', '1s'], { stdio: 'inherit', reject: false });
  await watch;
  await shutdown(0);
} catch (err) {
  console.error(`demo: ${(err as Error).message}`);
  console.error(`demo: logs are in ${join(dir, 'logs')}`);
  await shutdown(1);
}
