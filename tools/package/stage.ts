// Stages /usr/lib/slotctl of the .deb from the built checkout: the five workspace packages (built dist/, bin/, the
// coordinator's page/, the contract) and the production dependencies they need, copied out of pnpm's store layout
// (node_modules/.pnpm) as the checkout has them installed and built. Copying what is installed, rather than
// installing again, keeps one copy of each dependency (pnpm's layout: one directory per package version, the rest
// symlinks), needs no registry, and ships the very better-sqlite3 binary the build compiled for this Node's ABI.
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** Something the staging needs is missing or not as expected; `hint` says what to do. */
export class StageError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, hint?: string) {
    super(message);
    this.name = 'StageError';
    this.hint = hint;
  }
}

interface PackageJson {
  name: string;
  version?: string;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

export interface StageResult {
  /** name → path of its bin script inside the staged tree, relative to libDir: the /usr/bin links. */
  bins: Map<string, string>;
  /** the third-party packages shipped, "name@version" → license (for the copyright file) */
  bundled: Map<string, string>;
  workspacePackages: string[];
}

/** The workspace packages that are installed; everything else they use is found from their dependencies. */
export const TOP_PACKAGES = ['cli', 'agent', 'coordinator'];
/** Directories of a workspace package that run (no src/, no tests, no tsconfig). */
const SHIPPED_DIRS = ['dist', 'bin', 'page'];

const readJson = (file: string): PackageJson => JSON.parse(readFileSync(file, 'utf8')) as PackageJson;

/** Run-time files of a built package only: declarations, maps of declarations and build info are for compilers. */
function shippedFile(path: string): boolean {
  return !/\.d\.ts(\.map)?$|\.tsbuildinfo$|\.test\.[cm]?js(\.map)?$/.test(path);
}

/** Third-party files nothing loads at run time: TypeScript (declarations included) and the package's own tests;
 * for a node-gyp package (binding.gyp) its C/C++ sources and build leftovers too (objects, Makefiles, the static
 * library: 26 MB for better-sqlite3): build/Release/*.node is what `bindings` loads. */
function shippedThirdPartyFile(pkgDir: string, path: string): boolean {
  const rel = relative(pkgDir, path).split(sep);
  if (rel.length === 1 && rel[0] === '') return true;
  // pnpm's .bin shims hold the checkout's absolute paths; nothing here runs them
  if (/\.[cm]?ts$/.test(path) || rel.includes('.bin')) return false;
  if (rel.length >= 1 && ['test', 'tests', '__tests__'].includes(rel[0]!) && statSync(join(pkgDir, rel[0]!)).isDirectory()) return false;
  if (!existsSync(join(pkgDir, 'binding.gyp'))) return true;
  if (/\.(c|cc|cpp|cxx|h|hh|hpp|lzz|gyp|gypi|mk|a|o)$/.test(path)) return false;
  if (rel[0] !== 'build' || rel.length === 1) return true;
  if (rel.length === 2) return rel[1] === 'Release';
  return rel.length === 3 && rel[1] === 'Release' && rel[2]!.endsWith('.node');
}

/** Third-party packages as pnpm installed them: "<key>" is a directory of node_modules/.pnpm. */
class PnpmStore {
  readonly keys = new Set<string>();
  constructor(readonly dir: string) {}

  /** The store key of a real package path (…/.pnpm/<key>/node_modules/<name>), or undefined if not in the store. */
  keyOf(realPath: string): string | undefined {
    const rel = relative(this.dir, realPath);
    if (rel.startsWith('..')) return undefined;
    return rel.split(sep)[0];
  }

  /** Adds a key and everything its node_modules links to (its dependencies, optional ones and resolved peers: pnpm
   * installs no devDependencies of third-party packages, so every sibling is needed at run time). */
  visit(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    for (const entry of listModules(join(this.dir, key, 'node_modules'))) {
      const path = join(this.dir, key, 'node_modules', entry);
      if (!lstatSync(path).isSymbolicLink()) continue;
      const target = this.keyOf(realpathSync(path));
      if (target === undefined) throw new StageError(`${path} links outside node_modules/.pnpm: a third-party package depending on a workspace package is not expected`);
      this.visit(target);
    }
  }
}

/** Entries of a node_modules directory, scoped ones as "@scope/name"; .bin and dotfiles left out. */
function listModules(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((e) => !e.startsWith('.'))
    .flatMap((e) => (e.startsWith('@') ? readdirSync(join(dir, e)).map((s) => `${e}/${s}`) : [e]));
}

function link(target: string, path: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path);
}

/**
 * Copies the workspace packages `TOP_PACKAGES` need into `libDir` (…/usr/lib/slotctl), laid out as
 * node_modules/@slotctl/<name> plus node_modules/.pnpm/<key> for the rest. `version` is stamped into every staged
 * package.json (what SLOTCTL_VERSION reads at run time).
 */
export function stage(root: string, libDir: string, version: string): StageResult {
  const store = new PnpmStore(join(root, 'node_modules', '.pnpm'));
  if (!existsSync(store.dir)) throw new StageError(`${store.dir} is missing`, 'run `pnpm install --frozen-lockfile` (or `npm run setup`) first');
  const modules = join(libDir, 'node_modules');
  const workspace = new Map<string, string>(); // @slotctl/name → source dir
  const result: StageResult = { bins: new Map(), bundled: new Map(), workspacePackages: [] };

  const addWorkspace = (dir: string): void => {
    const pkg = readJson(join(dir, 'package.json'));
    if (workspace.has(pkg.name)) return;
    workspace.set(pkg.name, dir);
    if (!existsSync(join(dir, 'dist'))) throw new StageError(`${pkg.name} is not built (${join(dir, 'dist')} is missing)`, 'run `npm run build` first');
    const staged = join(modules, pkg.name);
    for (const sub of SHIPPED_DIRS) {
      if (existsSync(join(dir, sub))) cpSync(join(dir, sub), join(staged, sub), { recursive: true, filter: shippedFile });
    }
    // the production dependencies only (the workspace links in node_modules include devDependencies)
    const deps = { ...pkg.dependencies, ...pkg.optionalDependencies };
    for (const name of Object.keys(deps)) {
      const installed = join(dir, 'node_modules', name);
      if (!existsSync(installed)) throw new StageError(`${pkg.name} needs ${name}, not installed at ${installed}`, 'run `pnpm install --frozen-lockfile`');
      const real = realpathSync(installed);
      const key = store.keyOf(real);
      if (key === undefined) {
        // a workspace package: found by Node from node_modules/@slotctl/, beside this one
        addWorkspace(real);
        continue;
      }
      store.visit(key);
      link(relative(join(staged, 'node_modules', dirname(name)), join(modules, '.pnpm', relative(store.dir, real))), join(staged, 'node_modules', name));
    }
    // stamped version; workspace:* pinned to it (nothing resolves them here, but a reader should not see pnpm syntax)
    const pin = (d?: Record<string, string>) => d && Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v.startsWith('workspace:') ? version : v]));
    const { devDependencies: _dev, scripts: _scripts, ...rest } = pkg;
    writeFileSync(join(staged, 'package.json'), `${JSON.stringify({ ...rest, version, dependencies: pin(pkg.dependencies) }, null, 2)}\n`);
    for (const [bin, path] of Object.entries(pkg.bin ?? {})) result.bins.set(bin, join('node_modules', pkg.name, path));
    result.workspacePackages.push(pkg.name);
  };
  for (const p of TOP_PACKAGES) addWorkspace(join(root, 'packages', p));
  // the contract inside the shared package, where proto.ts looks first (its hash still matches dist/contract.json)
  cpSync(join(root, 'proto'), join(modules, '@slotctl', 'shared', 'proto'), { recursive: true });

  for (const key of [...store.keys].sort()) {
    const src = join(store.dir, key, 'node_modules');
    for (const entry of listModules(src)) {
      const path = join(src, entry);
      const dest = join(modules, '.pnpm', key, 'node_modules', entry);
      if (lstatSync(path).isSymbolicLink()) {
        link(readlinkSync(path), dest); // relative, to another key in the closure (visit() checked)
        continue;
      }
      cpSync(path, dest, { recursive: true, verbatimSymlinks: true, filter: (p) => shippedThirdPartyFile(path, p) });
      const pkg = readJson(join(path, 'package.json'));
      result.bundled.set(`${pkg.name}@${pkg.version ?? '?'}`, typeof pkg.license === 'string' ? pkg.license : 'see its directory');
    }
  }
  // pnpm's hoisted links (node_modules/.pnpm/node_modules): what a dependency uses without declaring it still
  // resolves, as in the checkout; only the links to packages that are shipped
  const hoisted = join(store.dir, 'node_modules');
  for (const entry of listModules(hoisted)) {
    const path = join(hoisted, entry);
    if (!lstatSync(path).isSymbolicLink()) continue;
    const key = store.keyOf(realpathSync(path));
    if (key !== undefined && store.keys.has(key)) link(readlinkSync(path), join(modules, '.pnpm', 'node_modules', entry));
  }
  return result;
}
