import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import * as commander from 'commander';
import { applyConfigFile, checkFileTrust, ConfigFileError, configFileHelp, nearest, parseConfigText, readTrustedFile, resolveTrustedPath, type ConfigFileOptions, type ConfigurableCommand } from '../index.js';

// tested against commander itself (a devDependency here; the daemons' dependency): the option sources (cli, env,
// default) it really keeps

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new commander.InvalidArgumentError(`"${value}" is not a TCP port`);
  return n;
}

const ENV = { level: 'CONFIG_TEST_LOG_LEVEL', insecure: 'CONFIG_TEST_INSECURE' };
const OPTIONS: ConfigFileOptions = { keys: { coordinator: 'coordinators' }, lists: ['coordinator'], strictBooleanEnv: { insecure: ENV.insecure } };

/** A daemon-like program, parsed from `argv` as commander parses the real ones. */
function program(argv: string[] = []): commander.Command {
  const { Command, Option } = commander;
  return new Command('test')
    .exitOverride()
    .addOption(new Option('--config <file>', 'the file'))
    .addOption(new Option('--machine <name>', 'name'))
    .addOption(new Option('--coordinator <list>', 'addresses').argParser((v) => v.split(',')).default(['127.0.0.1:7400']))
    .addOption(new Option('--imap-port <port>', 'port').argParser(port).default(1143))
    .addOption(new Option('--vip-driver <driver>', 'driver').choices(['loopback', 'ip']).default('loopback'))
    .addOption(new Option('--log-level <level>', 'level').env(ENV.level).default('info'))
    .addOption(new Option('--stop-slots-on-exit', 'flag'))
    .addOption(new Option('--insecure', 'flag').default(false))
    .parse(argv, { from: 'user' });
}

const dir = mkdtempSync(join(tmpdir(), 'slotctl-config-file-'));
let n = 0;
function file(text: string): string {
  const path = join(dir, `c${n++}.yaml`);
  writeFileSync(path, text, { mode: 0o644 });
  return path;
}

async function problemOf(text: string, options: ConfigFileOptions = OPTIONS): Promise<string> {
  const path = file(text);
  const err = await applyConfigFile(program(), { ...options, file: path }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigFileError);
  return (err as Error).message.replaceAll(path, 'FILE');
}

afterEach(() => {
  delete process.env[ENV.level];
  delete process.env[ENV.insecure];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('daemon configuration file', () => {
  it('a good file sets every kind of option: text, a port, a list (YAML or comma string), a boolean', async () => {
    const cmd = program();
    await applyConfigFile(cmd, { ...OPTIONS, file: file('# comment\nmachine: m1\ncoordinators:\n  - a:1\n  - b:2\nimap_port: 143\nvip_driver: ip\nstop_slots_on_exit: true\n') });
    expect(cmd.getOptionValue('machine')).toBe('m1');
    expect(cmd.getOptionValue('coordinator')).toEqual(['a:1', 'b:2']);
    expect(cmd.getOptionValue('imapPort')).toBe(143);
    expect(cmd.getOptionValue('vipDriver')).toBe('ip');
    expect(cmd.getOptionValue('stopSlotsOnExit')).toBe(true);
    expect(cmd.getOptionValueSource('imapPort')).toBe('config');
    const comma = program();
    await applyConfigFile(comma, { ...OPTIONS, file: file('coordinators: a:1,b:2\n') });
    expect(comma.getOptionValue('coordinator')).toEqual(['a:1', 'b:2']);
  });

  it('an empty file (or comments only) changes nothing', async () => {
    const cmd = program();
    await applyConfigFile(cmd, { ...OPTIONS, file: file('# nothing yet\n') });
    expect(cmd.getOptionValue('imapPort')).toBe(1143);
    expect(cmd.getOptionValueSource('imapPort')).toBe('default');
  });

  it('precedence: flag > environment > file > default', async () => {
    const path = file('log_level: warn\nimap_port: 143\n');
    const value = async (argv: string[], env?: string) => {
      if (env === undefined) delete process.env[ENV.level];
      else process.env[ENV.level] = env;
      const cmd = program(['--config', path, ...argv]);
      await applyConfigFile(cmd, { ...OPTIONS, file: path });
      return cmd.getOptionValue('logLevel');
    };
    expect(await value(['--log-level', 'debug'], 'error')).toBe('debug');
    expect(await value([], 'error')).toBe('error');
    expect(await value([])).toBe('warn');
    const none = program();
    await applyConfigFile(none, { ...OPTIONS, file: file('imap_port: 143\n') });
    expect(none.getOptionValue('logLevel')).toBe('info');
    // a flag without an environment variable: flag > file
    const flagged = program(['--imap-port', '993']);
    await applyConfigFile(flagged, { ...OPTIONS, file: path });
    expect(flagged.getOptionValue('imapPort')).toBe(993);
  });

  it('a boolean environment variable counts only as 1 (yes) or anything else (no), and wins over the file', async () => {
    const path = file('insecure: true\n');
    const insecure = async (env?: string, argv: string[] = []) => {
      if (env === undefined) delete process.env[ENV.insecure];
      else process.env[ENV.insecure] = env;
      const cmd = program(argv);
      await applyConfigFile(cmd, { ...OPTIONS, file: path });
      return cmd.getOptionValue('insecure');
    };
    expect(await insecure()).toBe(true);
    expect(await insecure('0')).toBe(false);
    expect(await insecure('1')).toBe(true);
    expect(await insecure('0', ['--insecure'])).toBe(true);
  });

  it('an unknown key: its line, and the known key nearest to it', async () => {
    expect(await problemOf('machine: m1\nimap_prot: 143\n')).toBe('FILE:2: unknown key "imap_prot" (did you mean imap_port?)');
    expect(await problemOf('vip-driver: ip\n')).toBe('FILE:1: unknown key "vip-driver" (did you mean vip_driver?)');
    expect(await problemOf('\n\ncoordinator: a:1\n')).toBe('FILE:3: unknown key "coordinator" (did you mean coordinators?)');
    expect(await problemOf('completely_else: 1\n')).toBe('FILE:1: unknown key "completely_else"');
    // not settings: the file that holds them, and the options that print and exit
    expect(await problemOf('config: /x\n')).toMatch(/^FILE:1: unknown key "config"/);
  });

  it('a wrong type: its line', async () => {
    expect(await problemOf('machine: m1\nimap_port: [143]\n')).toBe('FILE:2: imap_port: expected a single value, got a list');
    expect(await problemOf('machine:\n  name: m1\n')).toBe('FILE:1: machine: expected a single value, got a mapping');
    expect(await problemOf('log_level: true\n')).toBe('FILE:1: log_level: expected a value, not true/false (quote it if you mean the word), got true/false true');
    expect(await problemOf('stop_slots_on_exit: yes\n')).toBe('FILE:1: stop_slots_on_exit: expected true or false, got string "yes"');
    expect(await problemOf('x: 1\nmachine:\n')).toMatch(/^FILE:1: unknown key "x"\nFILE:2: machine has no value: give one, or remove the line/);
    expect(await problemOf('coordinators: [[a]]\n')).toBe('FILE:1: coordinators: expected a list of values, or one comma-separated string, got a list');
  });

  it("a bad value: the flag's own parser's message, with the line", async () => {
    expect(await problemOf('machine: m1\n\nimap_port: 70000\n')).toBe('FILE:3: imap_port: "70000" is not a TCP port');
    expect(await problemOf('vip_driver: ipv6\n')).toBe('FILE:1: vip_driver: Allowed choices are loopback, ip.');
  });

  it('YAML syntax: line and column; a file that is no mapping: its line', async () => {
    expect(await problemOf('machine: m1\nimap_port: [\n')).toMatch(/^FILE:3:1: YAML syntax: /);
    expect(await problemOf('machine: m1\nmachine: m2\n')).toMatch(/^FILE:2:1: YAML syntax: Map keys must be unique/);
    expect(await problemOf('machine: m1\n  x: 2\n')).toMatch(/^FILE:1:\d+: YAML syntax: /);
    expect(await problemOf('\n- machine\n')).toBe('FILE:2: the file must be a mapping of KEY: VALUE lines');
  });

  it('a missing file names its path and says what to do', async () => {
    const err = (await applyConfigFile(program(), { file: join(dir, 'absent.yaml') }).catch((e: unknown) => e)) as ConfigFileError;
    expect(err).toBeInstanceOf(ConfigFileError);
    expect(err.message).toBe(`cannot read the configuration file ${join(dir, 'absent.yaml')} (--config): no such file`);
    expect(err.hint).toMatch(/create it from the commented example/);
  });

  it('a file every user (or its group) may write is refused', async () => {
    const path = file('machine: m1\n');
    chmodSync(path, 0o666);
    await expect(applyConfigFile(program(), { file: path })).rejects.toThrow(/^refusing the configuration file .*: the file .* is writable by every user/);
    chmodSync(path, 0o664);
    await expect(applyConfigFile(program(), { file: path })).rejects.toThrow(/^refusing the configuration file .*: the file .* is writable by group gid \d+ \(the group-write bit\)$/);
  });

  it('one entry on the way: owner, write bits, sticky directories (pure)', () => {
    const stats = (uid: number, mode: number, kind: 'file' | 'dir' | 'link' = 'file') => ({ uid, gid: 0, mode, isFile: () => kind === 'file' }) as unknown as Stats;
    const check = (s: Stats, kind: 'file' | 'directory' | 'symbolic link', owners = [0]) => checkFileTrust('/x/a', s, kind, owners);
    expect(check(stats(0, 0o100644), 'file')).toBeUndefined();
    expect(check(stats(1000, 0o100644), 'file')?.problem).toBe('the file /x/a (mode 0644, owner uid 1000, group gid 0) belongs to uid 1000, who could have written it');
    expect(check(stats(1000, 0o100644), 'file', [0, 1000])).toBeUndefined();
    expect(check(stats(0, 0o100664), 'file')).toEqual({ problem: 'the file /x/a (mode 0664, owner root, group gid 0) is writable by group gid 0 (the group-write bit)', fix: 'chmod go-w /x/a' });
    expect(check(stats(0, 0o100646), 'file')?.problem).toMatch(/is writable by every user \(the world-write bit\)$/);
    expect(check(stats(0, 0o40755, 'dir'), 'file')?.problem).toBe('/x/a is not a regular file');
    expect(check(stats(0, 0o40755, 'dir'), 'directory')).toBeUndefined();
    expect(check(stats(0, 0o40775, 'dir'), 'directory')?.problem).toMatch(/^the directory \/x\/a \(mode 0775, .*\) is writable by group gid 0 \(the group-write bit, without the sticky bit\)/);
    expect(check(stats(0, 0o40777, 'dir'), 'directory')?.fix).toMatch(/^chmod go-w \/x\/a, or move the file/);
    expect(check(stats(0, 0o41777, 'dir'), 'directory')).toBeUndefined(); // sticky (/tmp): others cannot replace it
    expect(check(stats(1000, 0o41777, 'dir'), 'directory')?.problem).toMatch(/belongs to uid 1000, who could replace anything in it/);
    expect(check(stats(0, 0o120777, 'link'), 'symbolic link')).toBeUndefined(); // a link's own mode means nothing
    expect(check(stats(1000, 0o120777, 'link'), 'symbolic link')?.fix).toMatch(/^give the real path instead, or, if the link is right, .*chown -h root \/x\/a$/);
  });

  describe.skipIf(process.geteuid?.() !== 0)('the path to the file, on disk (as root: chown to another uid)', () => {
    const NOBODY = 65534;
    const tree = mkdtempSync(join(tmpdir(), 'slotctl-config-trust-'));
    afterAll(() => rmSync(tree, { recursive: true, force: true }));
    /** A directory (and its parents) under `tree`, each of the given mode, owned by root. */
    const mkdir = (rel: string, mode = 0o755): string => {
      const path = join(tree, rel);
      mkdirSync(path, { recursive: true });
      chmodSync(path, mode);
      return path;
    };
    const put = (dirPath: string, name = 'c.yaml', mode = 0o644): string => {
      const path = join(dirPath, name);
      writeFileSync(path, 'machine: m1\n');
      chmodSync(path, mode);
      return path;
    };
    const refusal = (path: string, owners = [0]): ConfigFileError => {
      try {
        readTrustedFile(path, '--config', owners);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigFileError);
        return err as ConfigFileError;
      }
      throw new Error(`${path} was accepted`);
    };

    it('a good file in a tree only root can change is read, directly or through root-owned links', () => {
      const ok = put(mkdir('good/etc/slotctl'));
      expect(readTrustedFile(ok)).toBe('machine: m1\n');
      symlinkSync(ok, join(tree, 'good/link.yaml'));
      symlinkSync('etc/slotctl', join(tree, 'good/dirlink'));
      expect(readTrustedFile(join(tree, 'good/link.yaml'))).toBe('machine: m1\n');
      expect(readTrustedFile(join(tree, 'good/dirlink/c.yaml'))).toBe('machine: m1\n');
      // ".." after a link is the link target's parent, as the kernel resolves it
      const dotdot = `${tree}/good/dirlink/../slotctl/c.yaml`; // not join(): it would drop "dirlink/.." unseen
      expect(resolveTrustedPath(dotdot, [0]).real).toBe(realpathSync.native(dotdot)); // realpath(3): node's own realpathSync resolves ".." by name first
      expect(resolveTrustedPath(dotdot, [0]).real).toBe(join(realpathSync(tree), 'good/etc/slotctl/c.yaml'));
      expect(readTrustedFile(dotdot)).toBe('machine: m1\n');
    });

    it('a file straight in /tmp (root, sticky 1777) is read', { skip: (lstatSync('/tmp').mode & 0o7777) !== 0o1777 || lstatSync('/tmp').uid !== 0 }, () => {
      const path = `/tmp/slotctl-config-trust-${process.pid}.yaml`;
      try {
        writeFileSync(path, 'machine: m1\n', { mode: 0o644 });
        chmodSync(path, 0o644);
        expect(readTrustedFile(path)).toBe('machine: m1\n');
      } finally {
        rmSync(path, { force: true });
      }
    });

    it('a sticky world-writable directory owned by root is accepted', () => {
      expect(readTrustedFile(put(mkdir('sticky', 0o1777)))).toBe('machine: m1\n');
    });

    it('a group-writable file is refused: which bit, and chmod go-w', () => {
      const path = put(mkdir('gw-file'), 'c.yaml', 0o664);
      const err = refusal(path);
      expect(err.message).toBe(`refusing the configuration file ${path}: the file ${path} (mode 0664, owner root, group gid 0) is writable by group gid 0 (the group-write bit)`);
      expect(err.hint).toBe(`chmod go-w ${path}`);
    });

    it('a group-writable ancestor directory is refused, naming it', () => {
      const parent = mkdir('gw-dir', 0o775);
      const path = put(mkdir('gw-dir/below'));
      const err = refusal(path);
      expect(err.message).toBe(`refusing the configuration file ${path}: the directory ${parent} (mode 0775, owner root, group gid 0) is writable by group gid 0 (the group-write bit, without the sticky bit), who could replace the file`);
      expect(err.hint).toMatch(new RegExp(`^chmod go-w ${parent}, `));
    });

    it("an ancestor directory of another user is refused (even sticky), but the daemon's own user's is not", () => {
      const theirs = mkdir('theirs');
      const path = put(mkdir('theirs/below'));
      chownSync(theirs, NOBODY, NOBODY);
      expect(refusal(path).message).toMatch(new RegExp(`: the directory ${theirs} \\(mode 0755, owner uid ${NOBODY}, group gid ${NOBODY}\\) belongs to uid ${NOBODY}, who could replace anything in it$`));
      expect(readTrustedFile(path, '--config', [0, NOBODY])).toBe('machine: m1\n');
      const sticky = mkdir('theirs-sticky', 0o1777);
      chownSync(sticky, NOBODY, NOBODY);
      expect(refusal(put(sticky)).message).toMatch(/belongs to uid 65534/);
    });

    it('a file of another user is refused', () => {
      const path = put(mkdir('their-file'));
      chownSync(path, NOBODY, NOBODY);
      expect(refusal(path).message).toMatch(new RegExp(`: the file ${path} \\(mode 0644, owner uid ${NOBODY}, .*\\) belongs to uid ${NOBODY}, who could have written it$`));
    });

    it('a symbolic link of another user is refused, the one given or a later one in a chain', () => {
      const ok = put(mkdir('links/etc'));
      const theirs = join(tree, 'links/theirs.yaml');
      symlinkSync(ok, theirs);
      lchownSync(theirs, NOBODY, NOBODY);
      expect(refusal(theirs).message).toMatch(new RegExp(`: the symbolic link ${theirs} \\(.*owner uid ${NOBODY}.*\\) belongs to uid ${NOBODY}, who could point it anywhere$`));
      // root's link -> root's link -> their link -> the file: the third is refused
      symlinkSync('theirs.yaml', join(tree, 'links/second.yaml'));
      symlinkSync(join(tree, 'links/second.yaml'), join(tree, 'links/first.yaml'));
      expect(refusal(join(tree, 'links/first.yaml')).message).toMatch(new RegExp(`: the symbolic link ${theirs} \\(`));
      // a link in the middle of the path (to a directory) counts as much
      const dirLink = join(tree, 'links/their-dir');
      symlinkSync('etc', dirLink);
      lchownSync(dirLink, NOBODY, NOBODY);
      expect(refusal(join(dirLink, 'c.yaml')).message).toMatch(new RegExp(`: the symbolic link ${dirLink} \\(`));
      // a root link into a directory another user can change
      const open = mkdir('links/open', 0o777);
      const inOpen = put(open);
      symlinkSync(inOpen, join(tree, 'links/to-open.yaml'));
      expect(refusal(join(tree, 'links/to-open.yaml')).message).toMatch(new RegExp(`: the directory ${open} \\(mode 0777, .*\\) is writable by every user`));
    });

    it('a loop of links, a file used as a directory: cannot read, not a crash', () => {
      const loops = mkdir('loops');
      symlinkSync('b', join(loops, 'a'));
      symlinkSync('a', join(loops, 'b'));
      expect(refusal(join(loops, 'a')).message).toBe(`cannot read the configuration file ${join(loops, 'a')} (--config): more than 40 symbolic links on the way`);
      const path = put(loops);
      expect(refusal(join(path, 'x.yaml')).message).toBe(`cannot read the configuration file ${join(path, 'x.yaml')} (--config): ${path} is not a directory`);
    });
  });

  it('a required option left unset names the key and the file', async () => {
    const path = file('imap_port: 143\n');
    await expect(applyConfigFile(program(), { ...OPTIONS, file: path, required: { machine: "this machine's name" } })).rejects.toThrow(
      `machine is not set: set machine: in ${path} (this machine's name), or give --machine`,
    );
    await expect(applyConfigFile(program(), { required: { machine: 'its name' } })).rejects.toThrow('--machine is not set: give --machine (its name), or set machine: in the file --config names');
    await expect(applyConfigFile(program(['--machine', 'm1']), { ...OPTIONS, file: path, required: { machine: 'x' } })).resolves.toBeUndefined();
  });

  it('--help says where each option goes in the file', () => {
    const help = configFileHelp(program(), OPTIONS);
    expect(help).toMatch(/--log-level is log_level/);
    expect(help).toMatch(/--coordinator is coordinators \(a YAML list, or a comma-separated string\)/);
  });

  it('did you mean: only a near key', () => {
    expect(nearest('tls_dri', ['tls_dir', 'tls_ca'])).toBe('tls_dir');
    expect(nearest('zzz', ['tls_dir', 'tls_ca'])).toBeUndefined();
  });

  it('the shipped examples are flat YAML mappings (their keys are checked against the daemons in test/config-files.test.ts)', async () => {
    for (const name of ['agent.yaml', 'coordinator.yaml']) {
      const text = readFileSync(new URL(`../../../../deploy/config/${name}`, import.meta.url), 'utf8');
      const keys = (await parseConfigText(name, text)).map((e) => e.key);
      expect(keys, name).toEqual(expect.arrayContaining(['tls_dir', 'http_listen', 'log_level']));
    }
  });

  it('keeps each key with the line it is on', async () => {
    expect(await parseConfigText('f', '# a\nmachine: m1\n\nimap_port: 143\n')).toEqual([
      { key: 'machine', value: 'm1', line: 2 },
      { key: 'imap_port', value: 143, line: 4 },
    ]);
  });
});
