// The daemons' --config files as an operator meets them: the built binaries, a bad file (exit 2, one line naming
// FILE:LINE), precedence of flag > environment > file > default, and the shipped examples in deploy/config/, which
// must load (the agent's once its machine is set) so that they cannot rot.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN } from '../tools/local-cluster.js';
import { removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('config-files');
const EMPTY = join(dir, 'no-certificates');
mkdirSync(EMPTY);
/** No certificate on purpose, over any the example names: a daemon gets past its options, then stops at the CA. */
const NO_TLS = ['--tls-dir', EMPTY, '--tls-ca', join(EMPTY, 'ca.crt'), '--tls-cert', join(EMPTY, 'a.crt'), '--tls-key', join(EMPTY, 'a.key')];
afterAll(() => removeDir(dir));

/** The environment without any SLOTCTL_* of the host running the tests. */
const BASE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLOTCTL_')));

function run(bin: string, args: string[], env: Record<string, string> = {}) {
  return execa('node', [bin, ...args], { reject: false, extendEnv: false, env: { ...BASE_ENV, ...env }, timeout: 60_000 });
}

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o644 });
  return path;
}

/** Every commented-out `# key: value` line (and `#   - item` below it) of an example made live. */
function uncommentAll(text: string): string {
  return text.replace(/^# (?=[a-z_]+:( |$)|  - )/gm, '');
}

describe('daemon --config files', { timeout: 120_000 }, () => {
  it('slot-agent: a bad file exits 2 with one line naming the file and line', async () => {
    const bad = write('agent-bad.yaml', 'machine: m1\n# ports\nimap_prot: 143\n');
    const r = await run(BIN.agent, ['--config', bad, '--machine', 'x']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim()).toBe(`slot-agent: ${bad}:3: unknown key "imap_prot" (did you mean imap_port?)`);
  });

  it('slot-coordinator: a bad file exits 2 naming file:line, for the daemon and its subcommands', async () => {
    const bad = write('coordinator-bad.yaml', 'listen: 127.0.0.1:7400\nhttp_listen: nowhere\n');
    const daemon = await run(BIN.coordinator, ['--config', bad]);
    expect(daemon.exitCode).toBe(2);
    expect(daemon.stderr.trim()).toBe(`slot-coordinator: ${bad}:2: http_listen: --http-listen "nowhere" is not HOST:PORT (for example --http-listen 127.0.0.1:7480, or --http-listen off)`);
    const exported = await run(BIN.coordinator, ['export'], { SLOTCTL_CONFIG: bad });
    expect(exported.exitCode).toBe(2);
    expect(exported.stderr).toContain(`${bad}:2: http_listen`);
  });

  it('a missing file names its path', async () => {
    const r = await run(BIN.agent, ['--config', join(dir, 'absent.yaml'), '--machine', 'm1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`cannot read the configuration file ${join(dir, 'absent.yaml')} (--config): no such file`);
  });

  it('a group-writable file is refused: exit 2, which bit, and the chmod that fixes it', async () => {
    const path = write('agent-group-writable.yaml', 'machine: m1\n');
    chmodSync(path, 0o664);
    const r = await run(BIN.agent, ['--config', path]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^slot-agent: refusing the configuration file ${path}: the file ${path} \\(mode 0664, owner .*\\) is writable by group gid \\d+ \\(the group-write bit\\)\nslot-agent: hint: chmod go-w ${path}$`));
  });

  it('precedence in the real daemon: flag > environment > file > default', async () => {
    // where the coordinator looks for its certificate says which tls_dir won (none of them exists)
    const file = write('coordinator-tls.yaml', `tls_dir: ${join(dir, 'from-file')}\n`);
    const tried = async (args: string[], env: Record<string, string> = {}) => (await run(BIN.coordinator, ['--config', file, ...args], env)).stderr;
    expect(await tried(['--tls-dir', join(dir, 'from-flag')], { SLOTCTL_TLS_DIR: join(dir, 'from-env') })).toContain('from-flag');
    expect(await tried([], { SLOTCTL_TLS_DIR: join(dir, 'from-env') })).toContain('from-env');
    expect(await tried([])).toContain('from-file');
    const none = await run(BIN.coordinator, ['--config', write('coordinator-empty.yaml', '# nothing\n')]);
    expect(none.stderr).toMatch(/cannot start: no certificate[^]*give --tls-dir/); // the default: no certificate named at all
  });

  it('the example agent.yaml: refused until machine is set, then loads (every commented key too)', async () => {
    const example = readFileSync(new URL('../deploy/config/agent.yaml', import.meta.url), 'utf8');
    const shipped = write('agent-example.yaml', example);
    const unset = await run(BIN.agent, ['--config', shipped]);
    expect(unset.exitCode).toBe(2);
    expect(unset.stderr.trim()).toBe(`slot-agent: machine is not set: set machine: in ${shipped} (this machine's name in the cluster file), or give --machine`);
    for (const [name, text] of [['agent-set.yaml', example], ['agent-all.yaml', uncommentAll(example)]] as const) {
      const path = write(name, text.replace(/^# machine: m1$/m, 'machine: m1'));
      const r = await run(BIN.agent, ['--config', path, ...NO_TLS]);
      expect(r.stderr, name).toContain(`cannot start: cannot read the CA certificate ${join(EMPTY, 'ca.crt')}`);
      expect(r.stderr, name).not.toContain(path);
      expect(r.exitCode, name).toBe(1);
      expect(r.stdout, name).toContain('"machine":"m1"'); // the file's machine
    }
  });

  it('the example coordinator.yaml loads (every commented key too)', async () => {
    const example = readFileSync(new URL('../deploy/config/coordinator.yaml', import.meta.url), 'utf8');
    for (const [name, text] of [['coordinator-example.yaml', example], ['coordinator-all.yaml', uncommentAll(example)]] as const) {
      const path = write(name, text);
      const r = await run(BIN.coordinator, ['--config', path, ...NO_TLS]);
      expect(r.stderr, name).toContain(`cannot start: cannot read the CA certificate ${join(EMPTY, 'ca.crt')}`);
      expect(r.stderr, name).not.toContain(path);
      expect(r.exitCode, name).toBe(1);
    }
  });
});
