// `npm run package [-- --version X.Y.Z] [-- --out DIR]`: builds dist/slotctl_VERSION_ARCH.deb from the built
// checkout (the npm script runs scripts/setup.sh first). Installs on Debian bookworm with NodeSource's nodejs 20 or
// Debian trixie's; the installed tree needs no checkout, pnpm or compiler. See stage.ts for what goes in and why.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { LIB_DIR, PACKAGE, buildDeb, placeFiles, writeControlArea } from './deb.js';
import { StageError, stage } from './stage.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const USAGE = `usage: npm run package -- [--version X.Y.Z] [--out DIR]
  --version  the package's version, stamped into every package.json (default: packages/shared/package.json's)
  --out      where the .deb is written (default: dist/)`;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function tool(cmd: string, args: string[], hint: string): Promise<string> {
  const r = await execa(cmd, args, { reject: false });
  if ((r as { code?: string }).code === 'ENOENT') throw new StageError(`${cmd} not found`, hint);
  if (r.exitCode !== 0) throw new StageError(`${cmd} ${args.join(' ')} failed (exit ${r.exitCode}): ${r.stderr}`);
  return r.stdout.trim();
}

/** The build must be there and current: the contract parsed at build time must match the .proto being shipped. */
function checkBuilt(): void {
  const json = join(ROOT, 'packages/shared/dist/contract.json');
  if (!existsSync(json)) throw new StageError(`the build is not done (${json} is missing)`, 'run `npm run build` (npm run package does it for you)');
  const proto = createHash('sha256').update(readFileSync(join(ROOT, 'proto/slotctl.proto'))).digest('hex');
  if ((JSON.parse(readFileSync(json, 'utf8')) as { protoSha256?: string }).protoSha256 !== proto) {
    throw new StageError('dist/contract.json was built from another proto/slotctl.proto', 'run `npm run build`');
  }
}

/** The staged tree runs on its own, away from the checkout: the stamped version and the native module load. */
async function smokeTest(libDir: string, version: string): Promise<void> {
  const cli = join(libDir, 'node_modules/@slotctl/cli/bin/slotctl.js');
  const said = await execa(process.execPath, [cli, '--version'], { reject: false, cwd: tmpdir() });
  if (said.stdout.trim() !== version) throw new StageError(`the staged slotctl --version says "${said.stdout.trim()}" (exit ${said.exitCode}), not ${version}: ${said.stderr}`);
  const sqlite = join(libDir, 'node_modules/@slotctl/coordinator/node_modules/better-sqlite3');
  const opened = await execa(process.execPath, ['-e', "new (require(process.argv[1]))(':memory:').close()", sqlite], { reject: false, cwd: tmpdir() });
  if (opened.exitCode !== 0) throw new StageError(`the staged better-sqlite3 does not load with Node ${process.versions.node}: ${opened.stderr}`, 'rebuild it: pnpm rebuild better-sqlite3');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { version: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const version = values.version ?? (JSON.parse(readFileSync(join(ROOT, 'packages/shared/package.json'), 'utf8')) as { version: string }).version;
  // X.Y.Z only: a Debian revision or suffix would not survive the coordinator's agent version check as intended
  if (!/^\d{1,6}\.\d{1,6}\.\d{1,6}$/.test(version)) throw new StageError(`--version ${version} is not X.Y.Z`);
  const outDir = resolve(values.out ?? join(ROOT, 'dist'));
  const started = Date.now();

  await tool('dpkg-deb', ['--version'], 'dpkg-deb comes with dpkg: build on Debian or Ubuntu');
  const arch = await tool('dpkg', ['--print-architecture'], 'build on Debian or Ubuntu');
  checkBuilt();
  const commit = (await execa('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { reject: false })).stdout?.trim() || undefined;

  const stageDir = mkdtempSync(join(tmpdir(), 'slotctl-deb-'));
  try {
    chmodSync(stageDir, 0o755); // the archive's "./": mkdtemp's 0700 is not what / should look like
    const libDir = join(stageDir, LIB_DIR);
    const staged = stage(ROOT, libDir, version);
    await smokeTest(libDir, version);
    const inputs = { root: ROOT, stageDir, version, arch, bins: staged.bins, bundled: staged.bundled };
    const conffiles = placeFiles(inputs, commit);
    if (conffiles.length === 0) console.warn('package: deploy/config/ holds no example configs: /etc/slotctl ships empty');
    writeControlArea(inputs, conffiles);
    const stagedAt = Date.now();
    mkdirSync(outDir, { recursive: true });
    const deb = join(outDir, `${PACKAGE}_${version}_${arch}.deb`);
    await buildDeb(stageDir, deb);
    const done = Date.now();
    const mb = (statSync(deb).size / 1e6).toFixed(1);
    console.log(`${deb}\n  ${mb} MB, ${staged.workspacePackages.length} slotctl packages + ${staged.bundled.size} dependencies; took ${seconds(done - started)} (staging ${seconds(stagedAt - started)}, dpkg-deb ${seconds(done - stagedAt)})`);
  } finally {
    rmSync(stageDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    console.error(`package: ${(err as Error).message}\n${USAGE}`);
  } else if (err instanceof StageError) {
    console.error(`package: ${err.message}${err.hint ? `\n  hint: ${err.hint}` : ''}`);
  } else {
    console.error('package: unexpected failure (a bug):', err);
  }
  process.exit(1);
});
