// `slotctl pki issue etcd …` run in-process: the files it writes (modes, the CA beside them), the addresses the
// certificate is valid for, the flags refused for other kinds, and the help that explains them.
import { readFileSync, statSync } from 'node:fs';
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
    expect(out).toMatchObject({ role: 'etcd', name: 'e1', cert: `${dir}/e1/etcd-e1.crt`, key: `${dir}/e1/etcd-e1.key`, ca: `${dir}/e1/ca.crt` });
    expect(statSync(`${dir}/e1/etcd-e1.key`).mode & 0o777).toBe(0o600);
    expect(statSync(`${dir}/e1/etcd-e1.crt`).mode & 0o777).toBe(0o644);
    const pem = readFileSync(`${dir}/e1/etcd-e1.crt`, 'utf8');
    expect(describeCertificate(pem).altNames).toEqual(['IP Address:10.231.1.1', 'IP Address:10.231.9.1', 'IP Address:FD00:0:0:0:0:0:0:1', 'IP Address:127.0.0.1', 'DNS:e1.example']);
    expect(out.altNames).toEqual(describeCertificate(pem).altNames);
    expect(signedBy(pem, readFileSync(`${dir}/ca.crt`, 'utf8'))).toBe(true);
    expect(readFileSync(`${dir}/e1/ca.crt`, 'utf8')).toBe(readFileSync(`${dir}/ca.crt`, 'utf8'));
  });

  it('says what the certificate is valid for, and show lists its names and usages', async () => {
    expect(await slotctl('pki', 'issue', 'etcd', 'e2', '--ip', '10.231.1.2', '--dir', dir)).toMatch(/^etcd e2: .*etcd-e2\.crt and .*etcd-e2\.key \(0600\), CA .*; valid for IP Address:10\.231\.1\.2; valid until /);
    expect(await slotctl('pki', 'show', `${dir}/etcd-e2.crt`)).toMatch(/^etcd e2\n {2}subject CN=e2, OU=etcd\n[\s\S]*\n {2}names IP Address:10\.231\.1\.2\n {2}usage serverAuth, clientAuth\n/);
  });

  it('refuses an etcd certificate without an address, and addresses on any other', async () => {
    await expect(slotctl('pki', 'issue', 'etcd', 'e3', '--dir', dir)).rejects.toThrow(/etcd member e3 needs an address/);
    await expect(slotctl('pki', 'issue', 'etcd', 'e3', '--ip', 'not-an-ip', '--dir', dir)).rejects.toThrow(ValidationError);
    await expect(slotctl('pki', 'issue', 'coordinator', 'co1', '--ip', '10.0.0.1', '--dir', dir)).rejects.toThrow(/--ip, --dns and --loopback are for etcd certificates, not coordinator/);
    await expect(slotctl('pki', 'issue', 'agent', 'm1', '--loopback', '--dir', dir)).rejects.toThrow(ValidationError);
  });

  it('--help explains what an etcd certificate names and how etcd uses it', async () => {
    expect(await slotctl('pki', '--help')).toMatch(/slotctl pki issue etcd e1 --ip [\s\S]*names every address \(--ip\)\s+and host name \(--dns\)[\s\S]*connects to its peers from[\s\S]*127\.0\.0\.1 only with\s+--loopback[\s\S]*--client-cert-auth\s+--peer-client-cert-auth/);
    expect(await slotctl('pki', 'issue', '--help')).toMatch(/--ip <ip,\.\.\.>[\s\S]*--dns <name,\.\.\.>[\s\S]*--loopback/);
  });
});
