// A PKI directory's two CAs: made together by initPki, the etcd CA alone for a directory from before it, never one
// replaced (not by a second init, not by one racing it, not through a link placed at its name), and each issuing only
// its own roles into the files their holders use.
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import { describeCertificate, signedBy } from './certificates.js';
import { caPaths, initEtcdCa, initPki, issueToDirectory, readCa } from './directory.js';

const root = mkdtempSync(join(tmpdir(), 'slotctl-pki-dir-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${++n}`);
const mode = (path: string) => statSync(path).mode & 0o777;

/** A directory as `slotctl pki init` left it before there was an etcd CA: the cluster CA alone. */
async function oldDirectory(): Promise<string> {
  const dir = fresh();
  await initPki(dir);
  for (const f of Object.values(caPaths(dir, 'etcd'))) unlinkSync(f);
  return dir;
}

describe('initPki', () => {
  it('makes the cluster CA and the etcd CA: keys 0600, certificates 0644, the directory 0700', async () => {
    const dir = fresh();
    const made = await initPki(dir, { days: 30 });
    expect(made).toEqual({ cluster: { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') }, etcd: { cert: join(dir, 'etcd-ca.crt'), key: join(dir, 'etcd-ca.key') } });
    expect(mode(dir)).toBe(0o700);
    for (const ca of [made.cluster, made.etcd]) {
      expect(mode(ca.key)).toBe(0o600);
      expect(mode(ca.cert)).toBe(0o644);
    }
    expect(describeCertificate(readFileSync(made.cluster.cert, 'utf8'))).toMatchObject({ isCa: true, caKind: 'cluster' });
    expect(describeCertificate(readFileSync(made.etcd.cert, 'utf8'))).toMatchObject({ isCa: true, caKind: 'etcd' });
  });

  it('refuses to replace either CA, and points a directory without an etcd CA to --etcd', async () => {
    const dir = fresh();
    await initPki(dir);
    const before = readFileSync(join(dir, 'ca.key'), 'utf8');
    await expect(initPki(dir)).rejects.toThrow(/a cluster CA already exists/);
    await expect(initPki(dir)).rejects.toSatisfy((err: ConfigError) => /use another --dir/.test(err.hint ?? ''));
    await expect(initEtcdCa(dir)).rejects.toThrow(/an etcd CA already exists/);
    expect(readFileSync(join(dir, 'ca.key'), 'utf8')).toBe(before);
    const old = await oldDirectory();
    await expect(initPki(old)).rejects.toSatisfy((err: ConfigError) => err instanceof ConfigError && err.hint === `it has no etcd CA yet: add one alone with slotctl pki init --etcd --dir ${old}`);
  });
});

describe('initEtcdCa', () => {
  it('adds the etcd CA to a directory from before it and leaves the cluster CA as it was', async () => {
    const dir = await oldDirectory();
    const cluster = readCa(dir);
    expect(() => readCa(dir, 'etcd')).toThrow(/no etcd CA in .*\(ENOENT\)/);
    await expect(issueToDirectory(dir, { role: 'etcd-client', name: 'co1' })).rejects.toSatisfy((err: ConfigError) => /slotctl pki init --etcd --dir/.test(err.hint ?? ''));
    const paths = await initEtcdCa(dir);
    expect(mode(paths.key)).toBe(0o600);
    expect(readCa(dir)).toEqual(cluster);
    expect(describeCertificate(readCa(dir, 'etcd').cert).caKind).toBe('etcd');
  });

  it('two at once: one makes the CA, the other is refused (no check-then-write gap)', async () => {
    const dir = await oldDirectory();
    const results = await Promise.allSettled([initEtcdCa(dir), initEtcdCa(dir)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(ConfigError);
    // the pair on disk belongs together: what its key signs, its certificate verifies
    const probe = await issueToDirectory(dir, { role: 'etcd-client', name: 'probe' });
    expect(signedBy(readFileSync(probe.cert, 'utf8'), readCa(dir, 'etcd').cert)).toBe(true);
  });

  it('does not write through a link placed at the key\'s name, even one to nowhere', async () => {
    const dir = await oldDirectory();
    const target = join(root, `elsewhere-${n}`);
    symlinkSync(target, join(dir, 'etcd-ca.key'));
    await expect(initEtcdCa(dir)).rejects.toThrow(ConfigError);
    expect(existsSync(target)).toBe(false);
    expect(lstatSync(join(dir, 'etcd-ca.key')).isSymbolicLink()).toBe(true);
  });
});

describe('issueToDirectory', () => {
  it('writes an etcd-client certificate of the etcd CA with etcd-ca.crt beside it, and no cluster CA', async () => {
    const dir = fresh();
    await initPki(dir);
    const out = join(dir, 'co1');
    const written = await issueToDirectory(dir, { role: 'etcd-client', name: 'co1' }, { out });
    expect(written).toMatchObject({ cert: join(out, 'etcd-client-co1.crt'), key: join(out, 'etcd-client-co1.key'), ca: join(out, 'etcd-ca.crt') });
    expect(mode(written.key)).toBe(0o600);
    expect(readFileSync(written.ca, 'utf8')).toBe(readCa(dir, 'etcd').cert);
    expect(existsSync(join(out, 'ca.crt'))).toBe(false); // nothing here should make a client trust the cluster CA for etcd
    expect(signedBy(readFileSync(written.cert, 'utf8'), readCa(dir, 'etcd').cert)).toBe(true);
    // and an agent's, into the same directory, comes from the cluster CA with ca.crt beside it
    const agent = await issueToDirectory(dir, { role: 'agent', name: 'm1' }, { out });
    expect(agent.ca).toBe(join(out, 'ca.crt'));
    expect(signedBy(readFileSync(agent.cert, 'utf8'), readCa(dir).cert)).toBe(true);
  });
});
