// Reading a daemon's configuration file: the file must be one root (or we) wrote and no one else could change, then
// it is parsed as a flat YAML mapping whose every key keeps its line, for messages that name FILE:LINE.
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { dirname } from 'node:path';
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

/**
 * Refuses a file another user could have written or replaced: the daemons run as root, and a file is as trusted as
 * the least trusted user who can change it. `owners`: the uids allowed to own it (root, and the user we run as).
 */
export function checkFileTrust(path: string, stats: { link?: Stats; file: Stats; dir: Stats }, owners: readonly number[]): string | undefined {
  const untrusted = (s: Stats) => !owners.includes(s.uid);
  const hint = `make it belong to ${owners.map(describeOwner).join(' or ')} and writable by its owner only (chown root:root ${path}; chmod 644 ${path})`;
  if (stats.link && untrusted(stats.link)) return `it is a symbolic link owned by ${describeOwner(stats.link.uid)}: ${hint}`;
  if (!stats.file.isFile()) return 'it is not a regular file';
  if (untrusted(stats.file)) return `it is owned by ${describeOwner(stats.file.uid)}: ${hint}`;
  if (stats.file.mode & 0o002) return `it is writable by every user: ${hint}`;
  // in a directory anyone may write to (and without the sticky bit) anyone could replace the file
  if (stats.dir.mode & 0o002 && !(stats.dir.mode & 0o1000)) return `every user may write to its directory ${dirname(path)}: move it to a directory only root can change (e.g. /etc/slotctl)`;
  return undefined;
}

function trustedOwners(): number[] {
  const me = process.geteuid?.() ?? 0;
  return me === 0 ? [0] : [0, me];
}

/** The file's text, once it is known to be a file only trusted users could have written. */
export function readTrustedFile(path: string, what = '--config'): string {
  const cannot = (err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String((err as Error).message);
    return new ConfigFileError(`cannot read the configuration file ${path} (${what}): ${why}`, {
      hint: code === 'ENOENT'
        ? 'create it from the commented example shipped with slotctl (deploy/config/), or give the right path with --config or SLOTCTL_CONFIG'
        : 'the daemon reads it at start: let root (or the user it runs as) read it',
    });
  };
  let fd: number;
  let link: Stats | undefined;
  try {
    const l = lstatSync(path);
    if (l.isSymbolicLink()) link = l;
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    throw cannot(err);
  }
  try {
    // the checks look at the file we opened, not at a name someone could point elsewhere in between
    const file = fstatSync(fd);
    const problem = checkFileTrust(path, { link, file, dir: lstatSync(dirname(path)) }, trustedOwners());
    if (problem) throw new ConfigFileError(`refusing the configuration file ${path}: ${problem}`);
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
