// A daemon's options from its configuration file (--config FILE, or SLOTCTL_CONFIG): each key is the long flag in
// snake_case (--vip-interface is vip_interface), its value goes through the flag's own parser, and a flag or an
// environment variable given for the same option wins over the file: flag > environment > file > default.
// Works on commander's Command through the few members it needs (this package does not depend on commander).
import { describeError, SlotctlError } from '../errors.js';
import { nearest } from './nearest.js';
import { ConfigFileError, configFileError, parseConfigText, readTrustedFile, type ConfigProblem } from './read.js';

/** The members of commander's Option the loader uses. */
export interface ConfigurableOption {
  long?: string;
  envVar?: string;
  parseArg?: (value: string, previous: never) => unknown;
  attributeName(): string;
  isBoolean(): boolean;
}

/** The members of commander's Command the loader uses. */
export interface ConfigurableCommand {
  readonly options: readonly ConfigurableOption[];
  getOptionValue(key: string): unknown;
  getOptionValueSource(key: string): string | undefined;
  setOptionValueWithSource(key: string, value: unknown, source: 'config' | 'env'): unknown;
}

export interface ConfigFileOptions {
  /** The file as the operator gave it (--config or SLOTCTL_CONFIG); none: only `required` and `strictBooleanEnv` apply. */
  file?: string;
  /** Keys that are not the flag's snake_case, by attribute name: { coordinator: 'coordinators' }. */
  keys?: Readonly<Record<string, string>>;
  /** Options (attribute names) that take a comma-separated list: a YAML list sets them too. */
  lists?: readonly string[];
  /** Options (attribute names) that must be set somewhere, with what to set them to (for the message). */
  required?: Readonly<Record<string, string>>;
  /** Boolean options an environment variable sets only as "1" ("0" is no): commander's .env() would take any value as yes. */
  strictBooleanEnv?: Readonly<Record<string, string>>;
}

/** Options that are no setting: the file that holds the settings, and the ones that print and exit. */
const NOT_IN_FILE = new Set(['config', 'help', 'version']);

export function configKey(option: ConfigurableOption, keys: ConfigFileOptions['keys'] = {}): string | undefined {
  const attr = option.attributeName();
  if (!option.long || NOT_IN_FILE.has(attr)) return undefined;
  return keys[attr] ?? option.long.replace(/^--/, '').replaceAll('-', '_');
}

function keyTable(command: ConfigurableCommand, keys: ConfigFileOptions['keys']): Map<string, ConfigurableOption> {
  const table = new Map<string, ConfigurableOption>();
  for (const option of command.options) {
    const key = configKey(option, keys);
    if (key) table.set(key, option);
  }
  return table;
}

function kind(value: unknown): string {
  if (value === null) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value === 'boolean' ? 'true/false' : typeof value} ${JSON.stringify(value)}`;
}

/** The text the flag would have been given, or why the YAML value cannot be one. */
function asFlagText(key: string, value: unknown, option: ConfigurableOption, list: boolean): { text: string } | { problem: string } {
  if (value === null) return { problem: `${key} has no value: give one, or remove the line to keep the default` };
  if (list && Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number')) return { text: value.join(',') };
  if (typeof value === 'string' || typeof value === 'number') return { text: String(value) };
  const want = list ? 'a list of values, or one comma-separated string' : typeof value === 'boolean' ? 'a value, not true/false (quote it if you mean the word)' : 'a single value';
  return { problem: `${key}: expected ${want}, got ${kind(value)}` };
}

function messageOf(err: unknown): string {
  // one line per problem: a parser's "message\n  hint: ..." becomes "message (...)"
  const text = err instanceof SlotctlError && err.hint ? `${err.message} (${err.hint})` : describeError(err);
  return text.replace(/\n\s*hint: ([^]*)$/, ' ($1)').replaceAll('\n', ' ');
}

/**
 * Applies the file's settings to the options that no flag and no environment variable set, then checks `required`.
 * Every problem of the file is reported at once, each as FILE:LINE: ...; throws ConfigFileError.
 */
export async function applyConfigFile(command: ConfigurableCommand, options: ConfigFileOptions): Promise<void> {
  const fixed = (attr: string) => ['cli', 'env'].includes(command.getOptionValueSource(attr) ?? '');
  for (const [attr, name] of Object.entries(options.strictBooleanEnv ?? {})) {
    const env = process.env[name];
    if (env !== undefined && !fixed(attr)) command.setOptionValueWithSource(attr, env === '1', 'env');
  }
  const { file } = options;
  if (file !== undefined) {
    const entries = await parseConfigText(file, readTrustedFile(file));
    const table = keyTable(command, options.keys);
    const problems: ConfigProblem[] = [];
    for (const { key, value, line } of entries) {
      const option = table.get(key);
      if (!option) {
        const near = nearest(key, [...table.keys()]);
        problems.push({ line, message: `unknown key ${JSON.stringify(key)}${near ? ` (did you mean ${near}?)` : ''}` });
        continue;
      }
      const attr = option.attributeName();
      let parsed: unknown;
      if (option.isBoolean()) {
        if (typeof value !== 'boolean') {
          problems.push({ line, message: `${key}: expected true or false, got ${kind(value)}` });
          continue;
        }
        parsed = value;
      } else {
        const given = asFlagText(key, value, option, options.lists?.includes(attr) ?? false);
        if ('problem' in given) {
          problems.push({ line, message: given.problem });
          continue;
        }
        try {
          // the flag's own parser: a bad value fails as the same bad flag would
          parsed = option.parseArg ? option.parseArg(given.text, command.getOptionValue(attr) as never) : given.text;
        } catch (err) {
          problems.push({ line, message: `${key}: ${messageOf(err)}` });
          continue;
        }
      }
      // checked even when a flag overrides it: the file must stay good for the next start without that flag
      if (!fixed(attr)) command.setOptionValueWithSource(attr, parsed, 'config');
    }
    if (problems.length) throw configFileError(file, problems);
  }
  for (const [attr, what] of Object.entries(options.required ?? {})) {
    if (command.getOptionValue(attr) !== undefined) continue;
    const option = command.options.find((o) => o.attributeName() === attr);
    const key = option ? configKey(option, options.keys) : attr;
    const flag = option?.long ?? attr;
    throw new ConfigFileError(
      file !== undefined ? `${key} is not set: set ${key}: in ${file} (${what}), or give ${flag}` : `${flag} is not set: give ${flag} (${what}), or set ${key}: in the file --config names`,
    );
  }
}

/** For --help: where each option goes in the file. */
export function configFileHelp(command: ConfigurableCommand, options: Pick<ConfigFileOptions, 'keys' | 'lists'> = {}): string {
  const special = command.options
    .filter((o) => configKey(o, options.keys) && (options.keys?.[o.attributeName()] || options.lists?.includes(o.attributeName())))
    .map((o) => `${o.long} is ${configKey(o, options.keys)}${options.lists?.includes(o.attributeName()) ? ' (a YAML list, or a comma-separated string)' : ''}`);
  return [
    'Every option but --config, --help and --version can also be set in the YAML file --config names (KEY: VALUE',
    'lines), under its long name in snake_case: --log-level is log_level;',
    ...special.map((s) => `${s};`),
    'a flag without a value is true or false there. A flag wins over its environment variable, which wins over',
    'the file, which wins over the default. The file must belong to root (or the user the daemon runs as) and be',
    'writable by its owner only (chmod go-w FILE), and so must every directory above it (unless sticky, as /tmp) and',
    'every symbolic link on the way to it.',
  ].join('\n');
}

/** applyConfigFile for a daemon's start: a problem is printed, one line each, and the process exits 2 (usage). */
export async function configureOrExit(program: string, command: ConfigurableCommand, options: ConfigFileOptions): Promise<void> {
  try {
    await applyConfigFile(command, options);
  } catch (err) {
    if (!(err instanceof ConfigFileError)) throw err;
    process.stderr.write(`${err.message.split('\n').map((l) => `${program}: ${l}`).join('\n')}\n${err.hint ? `${program}: hint: ${err.hint}\n` : ''}`);
    process.exit(err.exitCode);
  }
}
