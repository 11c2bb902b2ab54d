// `slotctl pki …` run in-process for etcd's certificates: init making both CAs (or the etcd CA alone), `issue etcd`
// and `issue etcd-client` (the files they write, modes, the etcd CA beside them, the addresses a member's certificate
// is valid for), the flags refused for other kinds, show, and the help that explains them.
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ValidationError } from '@slotctl/shared';
import { describeCertificate, signedBy } from '@slotctl/shared/pki';
import { removeDir, tempDir } from '../../../../test/support/fixtures.js';
import { registerPkiCommands } from './pki.js';

let dir: string;

/** Runs `slotctl ARGS` with the pki commands only; returns what it printed. */
async function slotctl(...args: string[]): Promise<string> {
  const program = new Command('slotctl').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
  registerPkiCommands(program);
  const out: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  try {
    await program.parseAsync(['node', 'slotctl', ...args]);
  } catch (err) {
    if (!(err instanceof CommanderError && err.exitCode === 0)) throw err; // --help ends with an exit 0
  } finally {
    write.mockRestore();
  }
  return out.join('');
}

beforeAll(async () => {
  dir = tempDir('pki-cli');
  await slotctl('pki', 'init', '--dir', dir);
});

afterAll(() => removeDir(dir));

describe('slotctl pki issue etcd', () => {
  it('writes etcd-NAME.crt and a key only its owner reads, valid for the addresses given (--ip twice, a list, --loopback)', async () => {
    const out = JSON.parse(await slotctl('pki', 'issue', 'etcd', 'e1', '--ip', '10.231.1.1,10.231.9.1', '--ip', 'fd00::1', '--dns', 'e1.example', '--loopback', '--dir', dir, '--out', `${dir}/e1`, '--json')) as Record<string, unknown>;
    expect(out).toMatchObject({ role: 'etcd', name: 'e1', cert: `${dir}/e1/etcd-e1.crt`, key: `${dir}/e1/etcd-e1.key`, ca: `${dir}/e1/etcd-ca.crt` });
    expect(statSync(`${dir}/e1/etcd-e1.key`).mode & 0o777).toBe(0o600);
    expect(statSync(`${dir}/e1/etcd-e1.crt`).mode & 0o777).toBe(0o644);
    const pem = readFileSync(`${dir}/e1/etcd-e1.crt`, 'utf8');
    expect(describeCertificate(pem).altNames).toEqual(['IP Address:10.231.1.1', 'IP Address:10.231.9.1', 'IP Address:FD00:0:0:0:0:0:0:1', 'IP Address:127.0.0.1', 'DNS:e1.example']);
    expect(out.altNames).toEqual(describeCertificate(pem).altNames);
    expect(signedBy(pem, readFileSync(`${dir}/etcd-ca.crt`, 'utf8'))).toBe(true);
    expect(signedBy(pem, readFileSync(`${dir}/ca.crt`, 'utf8'))).toBe(false);
    expect(readFileSync(`${dir}/e1/etcd-ca.crt`, 'utf8')).toBe(readFileSync(`${dir}/etcd-ca.crt`, 'utf8'));
    expect(existsSync(`${dir}/e1/ca.crt`)).toBe(false); // a member given the cluster CA might trust it
  });

  it('says what the certificate is valid for, and show lists its names and usages', async () => {
    expect(await slotctl('pki', 'issue', 'etcd', 'e2', '--ip', '10.231.1.2', '--dir', dir)).toMatch(/^etcd e2: .*etcd-e2\.crt and .*etcd-e2\.key \(0600\), CA .*; valid for IP Address:10\.231\.1\.2; valid until /);
    expect(await slotctl('pki', 'show', `${dir}/etcd-e2.crt`)).toMatch(/^etcd e2\n {2}subject CN=e2, OU=etcd\n {2}issuer CN=slotctl etcd CA, OU=etcd-ca\n {2}for etcd \(an etcd CA issued it; slotctl refuses it\)\n[\s\S]*\n {2}names IP Address:10\.231\.1\.2\n {2}usage serverAuth, clientAuth\n/);
  });

  it('refuses an etcd certificate without an address, and addresses on any other', async () => {
    await expect(slotctl('pki', 'issue', 'etcd', 'e3', '--dir', dir)).rejects.toThrow(/etcd member e3 needs an address/);
    await expect(slotctl('pki', 'issue', 'etcd', 'e3', '--ip', 'not-an-ip', '--dir', dir)).rejects.toThrow(ValidationError);
    await expect(slotctl('pki', 'issue', 'coordinator', 'co1', '--ip', '10.0.0.1', '--dir', dir)).rejects.toThrow(/--ip, --dns and --loopback are for etcd member certificates, not coordinator/);
    await expect(slotctl('pki', 'issue', 'agent', 'm1', '--loopback', '--dir', dir)).rejects.toThrow(ValidationError);
  });

  it('--help explains what an etcd certificate names, how etcd uses it, and why etcd has a CA of its own', async () => {
    const help = await slotctl('pki', '--help');
    expect(help).toMatch(/slotctl pki issue etcd e1 --ip [\s\S]*slotctl pki issue etcd-client co1 [\s\S]*slotctl pki init --etcd --dir/);
    expect(help).toMatch(/Why two CAs: etcd with --client-cert-auth lets in every clientAuth certificate its trusted CA signed/);
    expect(help).toMatch(/names every address \(--ip\)\s+and host name \(--dns\)[\s\S]*connects to its peers from[\s\S]*127\.0\.0\.1 only with\s+--loopback[\s\S]*etcd-ca\.crt as --trusted-ca-file\s+and --peer-trusted-ca-file[\s\S]*--client-cert-auth --peer-client-cert-auth/);
    expect(await slotctl('pki', 'issue', '--help')).toMatch(/--ip <ip,\.\.\.>[\s\S]*--dns <name,\.\.\.>[\s\S]*--loopback/);
  });
});

describe('slotctl pki init', () => {
  it('makes the cluster CA and the etcd CA, says so, and refuses to run again', async () => {
    const d = `${dir}/init`;
    expect(await slotctl('pki', 'init', '--dir', d)).toMatch(new RegExp(`^cluster CA created: ${d}/ca\\.crt \\(key ${d}/ca\\.key, mode 0600\\), valid until .*\netcd CA created: ${d}/etcd-ca\\.crt \\(key ${d}/etcd-ca\\.key, mode 0600\\), valid until .*\n$`));
    expect(statSync(`${d}/etcd-ca.key`).mode & 0o777).toBe(0o600);
    expect(await slotctl('pki', 'show', `${d}/etcd-ca.crt`)).toMatch(/^etcd CA\n {2}subject CN=slotctl etcd CA, OU=etcd-ca\n/);
    expect(await slotctl('pki', 'show', `${d}/ca.crt`)).toMatch(/^cluster CA\n/);
    await expect(slotctl('pki', 'init', '--dir', d)).rejects.toThrow(/a cluster CA already exists/);
    await expect(slotctl('pki', 'init', '--etcd', '--dir', d)).rejects.toThrow(/an etcd CA already exists/);
  });

  it('--etcd adds the etcd CA alone to a directory from before it, and says that the cluster CA is unchanged', async () => {
    const d = `${dir}/old`;
    await slotctl('pki', 'init', '--dir', d);
    for (const f of ['etcd-ca.crt', 'etcd-ca.key']) unlinkSync(`${d}/${f}`);
    const cluster = readFileSync(`${d}/ca.key`, 'utf8');
    await expect(slotctl('pki', 'issue', 'etcd-client', 'co1', '--dir', d)).rejects.toThrow(/no etcd CA in/);
    await expect(slotctl('pki', 'init', '--dir', d)).rejects.toSatisfy((err: ValidationError) => /slotctl pki init --etcd --dir/.test(err.hint ?? ''));
    const out = JSON.parse(await slotctl('pki', 'init', '--etcd', '--dir', d, '--json')) as Record<string, unknown>;
    expect(out).toEqual({ etcd: { cert: `${d}/etcd-ca.crt`, key: `${d}/etcd-ca.key`, notAfter: expect.any(String), fingerprint: expect.any(String) } });
    expect(readFileSync(`${d}/ca.key`, 'utf8')).toBe(cluster);
    for (const f of ['etcd-ca.crt', 'etcd-ca.key']) unlinkSync(`${d}/${f}`);
    expect(await slotctl('pki', 'init', '--etcd', '--dir', d)).toMatch(/^etcd CA created: .*\nonly the etcd CA was added; the cluster CA in .* is unchanged/);
  });
});

describe('slotctl pki issue etcd-client', () => {
  it('writes etcd-client-NAME.crt/.key with etcd-ca.crt beside them: a client certificate of the etcd CA', async () => {
    const out = JSON.parse(await slotctl('pki', 'issue', 'etcd-client', 'co1', '--dir', dir, '--out', `${dir}/co1`, '--json')) as Record<string, unknown>;
    expect(out).toMatchObject({ role: 'etcd-client', name: 'co1', cert: `${dir}/co1/etcd-client-co1.crt`, key: `${dir}/co1/etcd-client-co1.key`, ca: `${dir}/co1/etcd-ca.crt` });
    expect(statSync(`${dir}/co1/etcd-client-co1.key`).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${dir}/co1/etcd-ca.crt`, 'utf8')).toBe(readFileSync(`${dir}/etcd-ca.crt`, 'utf8'));
    const pem = readFileSync(`${dir}/co1/etcd-client-co1.crt`, 'utf8');
    expect(describeCertificate(pem)).toMatchObject({ role: 'etcd-client', name: 'co1', subject: 'CN=co1, OU=etcd-client', usages: ['clientAuth'] });
    expect(signedBy(pem, readFileSync(`${dir}/etcd-ca.crt`, 'utf8'))).toBe(true);
    expect(signedBy(pem, readFileSync(`${dir}/ca.crt`, 'utf8'))).toBe(false);
    expect(await slotctl('pki', 'show', `${dir}/co1/etcd-client-co1.crt`)).toMatch(/^etcd-client co1\n {2}subject CN=co1, OU=etcd-client\n {2}issuer CN=slotctl etcd CA, OU=etcd-ca\n {2}for etcd \(an etcd CA issued it; slotctl refuses it\)\n[\s\S]*\n {2}usage clientAuth\n/);
  });

  it('says where it wrote, refuses addresses, and leaves the other kinds with the cluster CA', async () => {
    expect(await slotctl('pki', 'issue', 'etcd-client', 'co2', '--dir', dir)).toMatch(/^etcd-client co2: .*etcd-client-co2\.crt and .*etcd-client-co2\.key \(0600\), CA .*etcd-ca\.crt; valid until /);
    await expect(slotctl('pki', 'issue', 'etcd-client', 'co3', '--ip', '10.0.0.1', '--dir', dir)).rejects.toThrow(/not etcd-client/);
    await slotctl('pki', 'issue', 'agent', 'm1', '--dir', dir);
    expect(await slotctl('pki', 'show', `${dir}/agent-m1.crt`)).toMatch(/^agent m1\n[\s\S]*\n {2}for slotctl \(a cluster CA issued it; etcd refuses it\)\n/);
    expect(signedBy(readFileSync(`${dir}/agent-m1.crt`, 'utf8'), readFileSync(`${dir}/ca.crt`, 'utf8'))).toBe(true);
  });
});
