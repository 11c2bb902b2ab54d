// slotctl pki …: the cluster's certificates, made on the operator's machine (no coordinator needed): one CA, a
// certificate for each coordinator, each agent (its machine's name), each etcd member (its name and the addresses it
// is dialled at) and each operator (a name and a role).
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ValidationError } from '@slotctl/shared';
import { describeCertificate, initPki, issueToDirectory, OPERATOR_ROLES, type Role } from '@slotctl/shared/pki';
import { positive, printJson } from '../context.js';

const KINDS = ['agent', 'coordinator', 'etcd', 'operator'] as const;

/** A comma-separated flag that may also be given several times: `--ip a,b --ip c`. */
const list = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

/** The address a member's own host dials for a local check (etcdctl, a health probe); only with --loopback. */
const LOOPBACK_IP = '127.0.0.1';

export function registerPkiCommands(program: Command): void {
  const pki = program
    .command('pki')
    .description('The cluster\'s certificates: every link is mutual TLS with one cluster CA. Runs locally; keep the CA\'s directory on an admin machine.')
    .addHelpText(
      'after',
      `
A set-up, from the directory that holds the CA (mode 0700; ca.key never leaves it):
  slotctl pki init --dir /root/slotctl-pki
  slotctl pki issue coordinator co1 --dir /root/slotctl-pki --out /etc/slotctl/tls      (on the coordinator host)
  slotctl pki issue agent m1 --dir /root/slotctl-pki --out /etc/slotctl/tls             (on mail host m1)
  slotctl pki issue operator alice --role operator --dir /root/slotctl-pki --out ~/.config/slotctl
  slotctl pki issue etcd e1 --ip 10.0.0.11 --dir /root/slotctl-pki --out /etc/slotctl/etcd   (etcd member e1)
Renewal is the same issue again: daemons read renewed files within 10 s, open connections go on.

etcd members: etcd checks peers and is checked by the coordinators by address (subjectAltName), so an etcd
certificate names every address (--ip) and host name (--dns) its peers and the coordinators dial it at, and the
address it connects to its peers from (etcd's peer port checks that one too), and nothing else: 127.0.0.1 only with
--loopback (for etcdctl on the member's own host). It is a server and a client certificate (peer links go both ways). Run each member with etcd-NAME.crt/.key for both its client and peer port, ca.crt as
--trusted-ca-file and --peer-trusted-ca-file, and --client-cert-auth --peer-client-cert-auth; the coordinators
connect with their coordinator certificates. Beware: etcd trusts every certificate of the cluster CA that allows
clientAuth (agents' and operators' too) on its client port.`,
    );

  pki
    .command('init')
    .description('Create the cluster CA (ca.crt, ca.key) in --dir; refuses to replace an existing one.')
    .requiredOption('--dir <dir>', 'the PKI directory')
    .option('--days <n>', 'validity of the CA', '3650')
    .option('--json', 'print as JSON')
    .action(async (opts: { dir: string; days: string; json?: boolean }) => {
      const paths = await initPki(opts.dir, { days: positive(opts.days, '--days') });
      const info = describeCertificate(readFileSync(paths.cert, 'utf8'));
      if (opts.json) printJson({ ...paths, notAfter: info.notAfter.toISOString(), fingerprint: info.fingerprint });
      else process.stdout.write(`cluster CA created: ${paths.cert} (key ${paths.key}, mode 0600), valid until ${info.notAfter.toISOString()}\n`);
    });

  pki
    .command('issue <kind> <name>')
    .description(
      'Issue (or renew) a certificate from the CA in --dir: kind agent (NAME is the machine), coordinator (NAME is the ' +
        'coordinator host), etcd (NAME is the etcd member; --ip/--dns/--loopback say where it is reached), or operator ' +
        '(NAME is the person; --role says what they may do). Writes ROLE-NAME.crt and ROLE-NAME.key (0600) to --out, ' +
        'with the CA\'s certificate beside them.',
    )
    .requiredOption('--dir <dir>', 'the PKI directory (with the CA)')
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
      if (kind !== 'etcd' && (opts.ip || opts.dns || opts.loopback)) throw new ValidationError(`--ip, --dns and --loopback are for etcd certificates, not ${kind}`, { hint: `slotctl's own links check ${kind} certificates by the name in them, not by address` });
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
    .description('What a certificate says: name, role, issuer, validity, the names it is valid for, its usages, fingerprint.')
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
        const who = info.isCa ? 'cluster CA' : info.role ? `${info.role} ${info.name}` : 'not a slotctl identity';
        const names = info.altNames.length ? `\n  names ${info.altNames.join(', ')}` : '';
        const usages = info.usages.length ? `\n  usage ${info.usages.join(', ')}` : '';
        process.stdout.write(`${who}\n  subject ${info.subject}\n  issuer ${info.issuer}\n  valid ${info.notBefore.toISOString()} – ${info.notAfter.toISOString()}${names}${usages}\n  sha256 ${info.fingerprint}\n`);
      }
    });
}
