// slotctl pki …: the cluster's certificates, made on the operator's machine (no coordinator needed). The cluster CA
// signs a certificate for each coordinator, each agent (its machine's name) and each operator (a name and a role);
// the etcd CA one for each etcd member (its name and the addresses it is dialled at) and an etcd-client one for each
// coordinator. etcd lets in whatever its CA signed, so it must not trust the CA every mail host has a certificate of.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ValidationError } from '@slotctl/shared';
import { type CaPaths, describeCertificate, initEtcdCa, initPki, issueToDirectory, OPERATOR_ROLES, type Role } from '@slotctl/shared/pki';
import { positive, printJson } from '../context.js';

const KINDS = ['agent', 'coordinator', 'etcd', 'etcd-client', 'operator'] as const;

/** A comma-separated flag that may also be given several times: `--ip a,b --ip c`. */
const list = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

/** The address a member's own host dials for a local check (etcdctl, a health probe); only with --loopback. */
const LOOPBACK_IP = '127.0.0.1';

export function registerPkiCommands(program: Command): void {
  const pki = program
    .command('pki')
    .description('The cluster\'s certificates: every link is mutual TLS, slotctl\'s with the cluster CA, etcd\'s with an etcd CA. Runs locally; keep the CAs\' directory on an admin machine.')
    .addHelpText(
      'after',
      `
A set-up, from the directory that holds the CAs (mode 0700; ca.key and etcd-ca.key never leave it):
  slotctl pki init --dir /root/slotctl-pki                                              (both CAs)
  slotctl pki issue coordinator co1 --dir /root/slotctl-pki --out /etc/slotctl/tls      (on the coordinator host)
  slotctl pki issue agent m1 --dir /root/slotctl-pki --out /etc/slotctl/tls             (on mail host m1)
  slotctl pki issue operator alice --role operator --dir /root/slotctl-pki --out ~/.config/slotctl
with the etcd backend also:
  slotctl pki issue etcd e1 --ip 10.0.0.11 --dir /root/slotctl-pki --out /etc/slotctl/etcd   (etcd member e1)
  slotctl pki issue etcd-client co1 --dir /root/slotctl-pki --out /etc/slotctl/tls      (coordinator co1's, for etcd)
A PKI directory made before the etcd CA existed gets it with: slotctl pki init --etcd --dir /root/slotctl-pki
Renewal is the same issue again: daemons read renewed files within 10 s, open connections go on (the coordinator's
etcd-client certificate is read at start).

Why two CAs: etcd with --client-cert-auth lets in every clientAuth certificate its trusted CA signed and cannot be
told which (etcd 3.4 has no allowed names for clients; its users are certificate CNs, the same for an agent and a
coordinator on one host). Trusting the cluster CA would let every mail host write the cluster state past the
coordinator. So etcd trusts only the etcd CA, which signs only its members and the coordinators' etcd-client
certificates, and nothing slotctl runs trusts the etcd CA.

etcd members: etcd checks peers and is checked by the coordinators by address (subjectAltName), so an etcd
certificate names every address (--ip) and host name (--dns) its peers and the coordinators dial it at, and the
address it connects to its peers from (etcd's peer port checks that one too), and nothing else: 127.0.0.1 only with
--loopback (for etcdctl on the member's own host). It is a server and a client certificate (peer links go both
ways). Run each member with etcd-NAME.crt/.key for both its client and peer port, etcd-ca.crt as --trusted-ca-file
and --peer-trusted-ca-file, and --client-cert-auth --peer-client-cert-auth.
etcd clients: etcd-client-NAME.crt/.key (clientAuth only, OU etcd-client), with etcd-ca.crt beside it; slot-coordinator
finds them in its --tls-dir (or takes --etcd-ca/--etcd-cert/--etcd-key). For etcdctl on an admin host, issue one too.`,
    );

  pki
    .command('init')
    .description('Create the cluster CA (ca.crt, ca.key) and the etcd CA (etcd-ca.crt, etcd-ca.key) in --dir; refuses to replace either. --etcd: only the etcd CA, for a directory made before it existed.')
    .requiredOption('--dir <dir>', 'the PKI directory')
    .option('--etcd', 'add only the etcd CA (the cluster CA in --dir is left as it is)')
    .option('--days <n>', 'validity of the CA(s)', '3650')
    .option('--json', 'print as JSON')
    .action(async (opts: { dir: string; etcd?: boolean; days: string; json?: boolean }) => {
      const days = positive(opts.days, '--days');
      const made = opts.etcd ? { etcd: await initEtcdCa(opts.dir, { days }) } : await initPki(opts.dir, { days });
      const about = (paths: CaPaths) => {
        const info = describeCertificate(readFileSync(paths.cert, 'utf8'));
        return { ...paths, notAfter: info.notAfter.toISOString(), fingerprint: info.fingerprint };
      };
      // the cluster CA's fields at the top level, as before there was an etcd CA
      if (opts.json) printJson({ ...('cluster' in made ? about(made.cluster) : {}), etcd: about(made.etcd) });
      else {
        const line = (what: string, ca: ReturnType<typeof about>) => `${what} created: ${ca.cert} (key ${ca.key}, mode 0600), valid until ${ca.notAfter}\n`;
        if ('cluster' in made) process.stdout.write(line('cluster CA', about(made.cluster)));
        process.stdout.write(line('etcd CA', about(made.etcd)));
        if (opts.etcd) process.stdout.write(`only the etcd CA was added; the cluster CA in ${opts.dir} is unchanged. Next: issue every etcd member and coordinator an etcd certificate from it (slotctl pki issue etcd … / etcd-client …)\n`);
      }
    });

  pki
    .command('issue <kind> <name>')
    .description(
      'Issue (or renew) a certificate from a CA in --dir. From the cluster CA: kind agent (NAME is the machine), ' +
        'coordinator (NAME is the coordinator host), or operator (NAME is the person; --role says what they may do). ' +
        'From the etcd CA: kind etcd (NAME is the etcd member; --ip/--dns/--loopback say where it is reached) and ' +
        'etcd-client (NAME is the coordinator host: what it shows etcd). Writes ROLE-NAME.crt and ROLE-NAME.key (0600) ' +
        'to --out, with the signing CA\'s certificate beside them (ca.crt, or etcd-ca.crt).',
    )
    .requiredOption('--dir <dir>', 'the PKI directory (with the CAs)')
    .option('--out <dir>', 'where to write the files (default: --dir)')
    .option('--role <role>', `an operator's role: ${OPERATOR_ROLES.join(', ')} (reader: look; operator: planned moves, cleanup; admin: everything)`, 'reader')
    .option('--ip <ip,...>', 'etcd: the IP addresses the member is dialled at (its peer and client URLs) and connects to its peers from; repeatable', list)
    .option('--dns <name,...>', 'etcd: host names the member is dialled by; repeatable', list)
    .option('--loopback', `etcd: also valid for ${LOOPBACK_IP} (etcdctl or a probe on the member's own host)`)
    .option('--days <n>', 'validity', '365')
    .option('--json', 'print as JSON')
    .action(async (kind: string, name: string, opts: { dir: string; out?: string; role: string; ip?: string[]; dns?: string[]; loopback?: boolean; days: string; json?: boolean }) => {
      if (!(KINDS as readonly string[]).includes(kind)) throw new ValidationError(`unknown kind "${kind}"`, { hint: `one of ${KINDS.join(', ')}` });
      if (kind === 'operator' && !(OPERATOR_ROLES as readonly string[]).includes(opts.role)) throw new ValidationError(`unknown role "${opts.role}"`, { hint: `one of ${OPERATOR_ROLES.join(', ')}` });
      if (kind !== 'etcd' && (opts.ip || opts.dns || opts.loopback)) {
        const why = kind === 'etcd-client' ? 'an etcd client is not dialled, so its certificate names no address' : `slotctl's own links check ${kind} certificates by the name in them, not by address`;
        throw new ValidationError(`--ip, --dns and --loopback are for etcd member certificates, not ${kind}`, { hint: why });
      }
      const role = (kind === 'operator' ? opts.role : kind) as Role;
      const ips = [...(opts.ip ?? []), ...(opts.loopback ? [LOOPBACK_IP] : [])];
      const altNames = kind === 'etcd' ? { ips, dns: opts.dns ?? [] } : undefined;
      const written = await issueToDirectory(opts.dir, { role, name }, { days: positive(opts.days, '--days'), out: opts.out, altNames });
      const info = describeCertificate(readFileSync(written.cert, 'utf8'));
      if (opts.json) printJson({ role, name, ...written, notAfter: written.notAfter.toISOString(), ...(kind === 'etcd' ? { altNames: info.altNames } : {}) });
      else {
        const valid = kind === 'etcd' ? `; valid for ${info.altNames.join(', ')}` : '';
        process.stdout.write(`${role} ${name}: ${written.cert} and ${written.key} (0600), CA ${written.ca}${valid}; valid until ${written.notAfter.toISOString()}\n`);
      }
    });

  pki
    .command('show <file>')
    .description('What a certificate says: name, role, issuer (and so whether slotctl or etcd accepts it), validity, the names it is valid for, its usages, fingerprint.')
    .option('--json', 'print as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      let pem: string;
      try {
        pem = readFileSync(file, 'utf8');
      } catch (err) {
        throw new ValidationError(`cannot read ${file}: ${(err as Error).message}`);
      }
      const info = describeCertificate(pem);
      if (opts.json) printJson({ ...info, notBefore: info.notBefore.toISOString(), notAfter: info.notAfter.toISOString() });
      else {
        const who = info.isCa ? `${info.caKind} CA` : info.role ? `${info.role} ${info.name}` : 'not a slotctl identity';
        // whom the holder is let in by: each CA's certificates are trusted by one side only
        const trusted = info.isCa ? '' : `\n  for ${info.caKind === 'etcd' ? 'etcd (an etcd CA issued it; slotctl refuses it)' : 'slotctl (a cluster CA issued it; etcd refuses it)'}`;
        const names = info.altNames.length ? `\n  names ${info.altNames.join(', ')}` : '';
        const usages = info.usages.length ? `\n  usage ${info.usages.join(', ')}` : '';
        process.stdout.write(`${who}\n  subject ${info.subject}\n  issuer ${info.issuer}${trusted}\n  valid ${info.notBefore.toISOString()} – ${info.notAfter.toISOString()}${names}${usages}\n  sha256 ${info.fingerprint}\n`);
      }
    });
}
