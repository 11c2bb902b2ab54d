// Reading a daemon's configuration file: the file must be one root (or we) wrote and no one else could change, nor
// any directory or symbolic link on the way to it; then it is parsed as a flat YAML mapping whose every key keeps
// its line, for messages that name FILE:LINE.
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { ConfigError } from '../errors.js';

/** A problem in (or with) a configuration file. Exit code 2: like a bad flag, the operator must fix the file. */
export class ConfigFileError extends ConfigError {
  readonly exitCode = 2;
}

export interface ConfigEntry {
  key: string;
  /** As YAML gives it: a string, number, boolean, null, an array or an object. */
  value: unknown;
  /** 1-based line of the key. */
  line: number;
}

export interface ConfigProblem {
  line: number;
  message: string;
}

/** `FILE:LINE: message`, one line per problem, the way compilers (and editors that jump to them) write it. */
export function configFileError(file: string, problems: readonly ConfigProblem[], hint?: string): ConfigFileError {
  return new ConfigFileError(problems.map((p) => `${file}:${p.line}: ${p.message}`).join('\n'), { hint });
}

function describeOwner(uid: number): string {
  return uid === 0 ? 'root' : `uid ${uid}`;
}

/** `0664`: the permission bits (and setuid/setgid/sticky) as chmod takes them. */
function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}

export type PathEntryKind = 'directory' | 'symbolic link' | 'file';

/** What is wrong with one entry on the way to a configuration file, and the command that fixes it. */
export interface TrustProblem {
  problem: string;
  fix: string;
}

/**
 * Pure: whether one entry met on the way to a configuration file (`stats` from lstat, or the fstat of the opened
 * file) leaves it as trusted as root. `owners`: the uids allowed to own it (root, and the user we run as). A
 * directory is trusted when a trusted user owns it and no one else may write to it, or only with the sticky bit (as
 * /tmp: no one can then rename or delete an entry they do not own); a symbolic link when a trusted user owns it (its
 * own mode means nothing); the file when it is a regular file a trusted user owns and no one else may write.
 */
export function checkFileTrust(path: string, stats: Stats, kind: PathEntryKind, owners: readonly number[]): TrustProblem | undefined {
  const entry = `the ${kind} ${path} (mode ${octal(stats.mode)}, owner ${describeOwner(stats.uid)}, group gid ${stats.gid})`;
  if (kind === 'file' && !stats.isFile()) return { problem: `${path} is not a regular file`, fix: 'give the path of a regular file' };
  const allowed = owners.map(describeOwner).join(' or ');
  if (!owners.includes(stats.uid)) {
    const could = kind === 'file' ? 'could have written it' : kind === 'directory' ? 'could replace anything in it' : 'could point it anywhere';
    const fix = kind === 'symbolic link'
      ? `give the real path instead, or, if the link is right, make it ${allowed}'s: chown -h root ${path}`
      : `if its content is right, make it ${allowed}'s: chown root ${path}`;
    return { problem: `${entry} belongs to ${describeOwner(stats.uid)}, who ${could}`, fix };
  }
  if (kind === 'symbolic link') return undefined;
  const writers = stats.mode & 0o002 ? 'every user' : stats.mode & 0o020 ? `group gid ${stats.gid}` : undefined;
  if (!writers) return undefined;
  const bit = stats.mode & 0o002 ? 'world' : 'group';
  if (kind === 'file') return { problem: `${entry} is writable by ${writers} (the ${bit}-write bit)`, fix: `chmod go-w ${path}` };
  if (stats.mode & 0o1000) return undefined; // sticky: others may add files there but not replace ours
  return {
    problem: `${entry} is writable by ${writers} (the ${bit}-write bit, without the sticky bit), who could replace the file`,
    fix: `chmod go-w ${path}, or move the file to a directory only root can change (e.g. /etc/slotctl)`,
  };
}

function trustedOwners(): number[] {
  const me = process.geteuid?.() ?? 0;
  return me === 0 ? [0] : [0, me];
}

/** As many symbolic links as Linux follows in one path lookup. */
const MAX_LINKS = 40;

function errno(code: string, path: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${message}, '${path}'`), { code, path });
}

/**
 * Resolves `path` the way the kernel does, one component at a time from / (lstat each, readlink each link), and
 * checks every directory passed through, every symbolic link followed and the file at the end with checkFileTrust:
 * the first problem is thrown as ConfigFileError naming `file` (as given). Returns the real path and its lstat. A
 * missing or unreadable entry throws its errno error (ENOENT, EACCES, ENOTDIR, ELOOP after MAX_LINKS links).
 */
export function resolveTrustedPath(file: string, owners: readonly number[]): { real: string; stats: Stats } {
  const check = (path: string, stats: Stats, kind: PathEntryKind) => {
    const found = checkFileTrust(path, stats, kind, owners);
    if (found) throw new ConfigFileError(`refusing the configuration file ${file}: ${found.problem}`, { hint: found.fix });
  };
  const components = (p: string) => p.split('/').filter((c) => c !== '' && c !== '.');
  // not path.resolve: it would drop "x/.." before x is known to be a directory and not a link
  let rest = components(isAbsolute(file) ? file : `${process.cwd()}/${file}`);
  let at = '/'; // a real path: every directory from / down to it has been checked
  check(at, lstatSync(at), 'directory');
  let links = 0;
  while (rest.length) {
    const name = rest.shift()!;
    if (name === '..') {
      at = dirname(at); // checked on the way down
      continue;
    }
    const next = at === '/' ? `/${name}` : `${at}/${name}`;
    const stats = lstatSync(next);
    if (stats.isSymbolicLink()) {
      check(next, stats, 'symbolic link'); // its directory, `at`, is already checked
      if (++links > MAX_LINKS) throw errno('ELOOP', file, 'too many symbolic links encountered');
      const target = readlinkSync(next);
      if (isAbsolute(target)) at = '/';
      rest = [...components(target), ...rest];
      continue;
    }
    if (rest.length) {
      if (!stats.isDirectory()) throw errno('ENOTDIR', next, 'not a directory');
      check(next, stats, 'directory');
    }
    at = next;
  }
  const stats = lstatSync(at);
  check(at, stats, 'file');
  return { real: at, stats };
}

/**
 * The file's text, once it is known to be a file only trusted users could have written: every directory from / to
 * it, every symbolic link on the way and the file itself (see resolveTrustedPath). `owners`: root and the user we
 * run as.
 */
export function readTrustedFile(path: string, what = '--config', owners: readonly number[] = trustedOwners()): string {
  const cannot = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT'
      ? 'no such file'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'ENOTDIR'
            ? `${(err as NodeJS.ErrnoException).path} is not a directory`
            : code === 'ELOOP'
              ? `more than ${MAX_LINKS} symbolic links on the way`
              : String((err as Error).message);
    return new ConfigFileError(`cannot read the configuration file ${path} (${what}): ${why}`, {
      hint: code === 'ENOENT'
        ? 'create it from the commented example shipped with slotctl (deploy/config/), or give the right path with --config or SLOTCTL_CONFIG'
        : code === 'ENOTDIR' || code === 'ELOOP'
          ? 'give the real path of the file'
          : 'the daemon reads it at start: let root (or the user it runs as) read it',
    });
  };
  let fd: number;
  let checked: { real: string; stats: Stats };
  try {
    checked = resolveTrustedPath(path, owners);
    // the real path, not following a link at its end: what was checked, unless someone swapped it in between
    fd = openSync(checked.real, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    throw cannot(err);
  }
  try {
    // the file we opened, not a name someone could have pointed elsewhere since it was checked
    const file = fstatSync(fd);
    if (file.dev !== checked.stats.dev || file.ino !== checked.stats.ino) {
      throw new ConfigFileError(`refusing the configuration file ${path}: ${checked.real} was replaced while it was being checked`, {
        hint: 'find out who changes it; start the daemon again once the file stays put',
      });
    }
    const found = checkFileTrust(checked.real, file, 'file', owners);
    if (found) throw new ConfigFileError(`refusing the configuration file ${path}: ${found.problem}`, { hint: found.fix });
    return readFileSync(fd, 'utf8');
  } catch (err) {
    if (err instanceof ConfigFileError) throw err;
    throw cannot(err);
  } finally {
    closeSync(fd);
  }
}

/**
 * The top-level keys of a YAML mapping with their lines. `yaml` is loaded here, not at start: the daemons run without
 * a file in tests, and the agent's memory matters (see validate.ts).
 */
export async function parseConfigText(file: string, text: string): Promise<ConfigEntry[]> {
  const { LineCounter, isMap, isScalar, parseDocument } = await import('yaml');
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    // line AND column: a YAML mistake is often a stray character or an indentation
    throw new ConfigFileError(
      doc.errors.map((e) => `${file}:${e.linePos?.[0]?.line ?? 0}:${e.linePos?.[0]?.col ?? 0}: YAML syntax: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`).join('\n'),
      { hint: 'keys and values as KEY: VALUE, one per line, starting in the first column; quote values with ":" or "#"' },
    );
  }
  if (doc.contents === null) return []; // empty, or comments only: every option keeps its default
  const lineAt = (node: { range?: [number, number, number] | null } | null | undefined) => (node?.range ? counter.linePos(node.range[0]).line : 1);
  if (!isMap(doc.contents)) throw configFileError(file, [{ line: lineAt(doc.contents), message: 'the file must be a mapping of KEY: VALUE lines' }]);
  const values = doc.toJS() as Record<string, unknown>;
  return doc.contents.items.map((pair) => {
    const keyNode = isScalar(pair.key) ? pair.key : undefined;
    const line = lineAt(keyNode ?? doc.contents);
    if (typeof keyNode?.value !== 'string') throw configFileError(file, [{ line, message: 'a key must be a plain name such as log_level' }]);
    return { key: keyNode.value, value: values[keyNode.value] ?? null, line };
  });
}
