// Which certificate a coordinator shows etcd: the etcd-client one in --tls-dir by default (never its own, which etcd
// refuses), --etcd-* over it, and a refusal at start that names the command making the missing one. Which errors
// count against an etcd member (its circuit breaker).
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@slotctl/shared';
import { initPki, issueToDirectory } from '@slotctl/shared/pki';
import { EtcdLeaseInvalidError, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { etcdClientFromFlags, etcdTlsPaths, memberFailed, type EtcdFlags } from './etcd-flags.js';

const root = mkdtempSync(join(tmpdir(), 'slotctl-etcd-flags-'));
const pki = join(root, 'pki');
/** A coordinator's --tls-dir as the set-up writes it: its own certificate, and its etcd-client one. */
const tls = join(root, 'tls');
let n = 0;

beforeAll(async () => {
  await initPki(pki);
  await issueToDirectory(pki, { role: 'coordinator', name: 'co1' }, { out: tls });
  await issueToDirectory(pki, { role: 'etcd-client', name: 'co1' }, { out: tls });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const flags = (more: Partial<EtcdFlags> & { tlsDir?: string; insecure?: boolean; tlsCa?: string; tlsCert?: string; tlsKey?: string } = {}) => ({ etcdEndpoints: 'https://127.0.0.1:2379', etcdPrefix: '/slotctl', tlsDir: tls, ...more });

/** What etcdClientFromFlags throws (a client made is closed at once: it connects only when used). */
function refusal(f: ReturnType<typeof flags>): ConfigError {
  try {
    etcdClientFromFlags(f).close();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('no refusal');
}

/** A --tls-dir with only the files named (copied from the full one). */
function dirWith(...files: string[]): string {
  const dir = join(root, `tls${++n}`);
  mkdirSync(dir, { mode: 0o700 });
  for (const f of files) copyFileSync(join(tls, f), join(dir, f));
  return dir;
}

describe('the certificate a coordinator shows etcd', () => {
  it('is by default the etcd-client one in --tls-dir, with etcd-ca.crt: not the coordinator\'s own', () => {
    expect(etcdTlsPaths(flags())).toEqual({ ca: join(tls, 'etcd-ca.crt'), cert: join(tls, 'etcd-client-co1.crt'), key: join(tls, 'etcd-client-co1.key') });
    etcdClientFromFlags(flags()).close();
  });

  it('is refused when missing, with the command that makes it (the host named from the coordinator\'s own)', () => {
    const dir = dirWith('ca.crt', 'coordinator-co1.crt', 'coordinator-co1.key');
    const err = refusal(flags({ tlsDir: dir }));
    expect(err.message).toMatch(`no etcd-client certificate in ${dir}: etcd lets in only certificates of the etcd CA, not this coordinator's own`);
    expect(err.hint).toBe(`issue one with: slotctl pki issue etcd-client co1 --dir PKI-DIR --out ${dir}`);
    // no --tls-dir at all, the coordinator's files named one by one: nothing to look in
    const own = { tlsDir: undefined, tlsCa: join(tls, 'ca.crt'), tlsCert: join(tls, 'coordinator-co1.crt'), tlsKey: join(tls, 'coordinator-co1.key') };
    expect(refusal(flags(own)).message).toMatch(/^no certificate for etcd: give --tls-dir holding etcd-ca\.crt and etcd-client-HOST\.crt\/\.key, or --etcd-ca, --etcd-cert and --etcd-key$/);
    expect(refusal(flags(own)).hint).toBe('issue one with: slotctl pki issue etcd-client co1 --dir PKI-DIR --out DIR');
  });

  it('needs etcd-ca.crt beside it, and only one of them', () => {
    const noCa = dirWith('etcd-client-co1.crt', 'etcd-client-co1.key');
    expect(refusal(flags({ tlsDir: noCa })).message).toBe(`no etcd-ca.crt in ${noCa} beside etcd-client-co1.crt`);
    const two = dirWith('etcd-ca.crt', 'etcd-client-co1.crt', 'etcd-client-co1.key');
    copyFileSync(join(tls, 'etcd-client-co1.crt'), join(two, 'etcd-client-co2.crt'));
    expect(refusal(flags({ tlsDir: two })).message).toMatch(/several etcd-client certificates in .*: etcd-client-co1\.crt, etcd-client-co2\.crt/);
  });

  it('--etcd-ca, --etcd-cert and --etcd-key override --tls-dir (cert and key together)', () => {
    const elsewhere = dirWith('etcd-ca.crt', 'etcd-client-co1.crt', 'etcd-client-co1.key');
    const given = { etcdCa: join(elsewhere, 'etcd-ca.crt'), etcdCert: join(elsewhere, 'etcd-client-co1.crt'), etcdKey: join(elsewhere, 'etcd-client-co1.key') };
    expect(etcdTlsPaths(flags({ ...given, tlsDir: undefined }))).toEqual({ ca: given.etcdCa, cert: given.etcdCert, key: given.etcdKey });
    expect(etcdTlsPaths(flags({ etcdCa: given.etcdCa }))).toEqual({ ca: given.etcdCa, cert: join(tls, 'etcd-client-co1.crt'), key: join(tls, 'etcd-client-co1.key') });
    expect(etcdTlsPaths(flags({ etcdCert: given.etcdCert, etcdKey: given.etcdKey }))).toEqual({ ca: join(tls, 'etcd-ca.crt'), cert: given.etcdCert, key: given.etcdKey });
    expect(refusal(flags({ etcdCert: given.etcdCert })).message).toBe('--etcd-cert and --etcd-key go together');
    etcdClientFromFlags(flags({ ...given, tlsDir: undefined })).close();
  });

  it('refuses a certificate of the cluster CA (the coordinator\'s own) and the cluster CA as etcd\'s', () => {
    const own = refusal(flags({ etcdCert: join(tls, 'coordinator-co1.crt'), etcdKey: join(tls, 'coordinator-co1.key') }));
    expect(own.message).toMatch(/^the certificate for etcd: the certificate .*coordinator-co1\.crt was not signed by the CA in .*etcd-ca\.crt$/);
    expect(own.hint).toBe(`etcd lets in only certificates of the etcd CA; issue one with: slotctl pki issue etcd-client co1 --dir PKI-DIR --out ${tls}`);
    // the coordinator's own with the cluster CA: the right pair, the wrong role
    const pair = refusal(flags({ etcdCa: join(tls, 'ca.crt'), etcdCert: join(tls, 'coordinator-co1.crt'), etcdKey: join(tls, 'coordinator-co1.key') }));
    expect(pair.message).toMatch(/coordinator-co1\.crt is for coordinator co1, not for etcd-client$/);
    expect(refusal(flags({ etcdCa: join(tls, 'ca.crt') })).message).toMatch(/etcd-client-co1\.crt was not signed by the CA in .*\/ca\.crt$/);
  });

  it('keeps the rule for http://: only with --insecure, and then no certificate is needed', () => {
    expect(refusal(flags({ etcdEndpoints: 'http://127.0.0.1:2379' })).message).toMatch(/is in the clear/);
    etcdClientFromFlags(flags({ etcdEndpoints: 'http://127.0.0.1:2379', insecure: true, tlsDir: undefined })).close();
  });
});

describe('which errors count against an etcd member', () => {
  it("counts the member's own failures, not etcd's answers during an election nor a deadline that passed elsewhere", () => {
    expect(memberFailed(new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 10.0.0.2:2379'))).toBe(true);
    expect(memberFailed(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 0.999s,name resolution: 0.001s,LB pick: 0.009s,remote_addr=10.0.0.3:2379'))).toBe(true);
    expect(memberFailed(new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: no leader'))).toBe(false);
    expect(memberFailed(new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: leader changed'))).toBe(false);
    expect(memberFailed(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 0.000s,waiting for name resolution'))).toBe(false);
    expect(memberFailed(new EtcdLeaseInvalidError('etcdserver: requested lease not found'))).toBe(false);
  });
});
