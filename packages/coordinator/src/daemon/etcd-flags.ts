// The etcd client of a coordinator from its flags: mutual TLS with etcd by default (the coordinator's own certificate
// and the cluster CA, unless --etcd-* name others); plain http:// endpoints only with --insecure, by name.
import { readFileSync } from 'node:fs';
import { Etcd3 } from 'etcd3';
import { ConfigError, resolveTlsPaths, type TlsFlags } from '@slotctl/shared';

export interface EtcdFlags {
  etcdEndpoints?: string;
  etcdPrefix: string;
  etcdCa?: string;
  etcdCert?: string;
  etcdKey?: string;
}

export function etcdClientFromFlags(flags: EtcdFlags & TlsFlags): Etcd3 {
  const endpoints = (flags.etcdEndpoints ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (endpoints.length === 0) throw new ConfigError('--store etcd needs --etcd-endpoints', { hint: 'name every etcd member: --etcd-endpoints https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379' });
  if (!/^\/[A-Za-z0-9._/-]*$/.test(flags.etcdPrefix)) throw new ConfigError(`--etcd-prefix ${JSON.stringify(flags.etcdPrefix)} is not a key prefix`, { hint: 'letters, digits, . _ - and /, starting with /' });
  for (const e of endpoints) if (!/^https?:\/\/[^/\s]+$/.test(e)) throw new ConfigError(`etcd endpoint ${JSON.stringify(e)} is not a URL`, { hint: 'https://HOST:PORT' });
  const plain = endpoints.filter((e) => e.startsWith('http://'));
  if (plain.length && !flags.insecure) throw new ConfigError(`etcd endpoint ${plain[0]} is in the clear`, { hint: 'use https:// (etcd with --client-cert-auth; certificates: slotctl pki issue etcd --help), or --insecure for a test setup' });
  if (plain.length !== endpoints.length && plain.length) throw new ConfigError('some etcd endpoints are https:// and some http://', { hint: 'one kind for all' });
  if (plain.length) return new Etcd3({ hosts: endpoints, dialTimeout: 2000 });
  const own = resolveTlsPaths(flags, { roles: ['coordinator'] });
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`cannot read the ${what} for etcd, ${path} (${(err as NodeJS.ErrnoException).code ?? err})`, { hint: 'check --etcd-ca/--etcd-cert/--etcd-key or --tls-*' });
    }
  };
  return new Etcd3({
    hosts: endpoints,
    dialTimeout: 2000,
    credentials: { rootCertificate: read(flags.etcdCa ?? own.ca, 'CA'), certChain: read(flags.etcdCert ?? own.cert, 'certificate'), privateKey: read(flags.etcdKey ?? own.key, 'private key') },
  });
}
