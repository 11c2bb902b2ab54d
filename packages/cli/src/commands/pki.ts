// slotctl pki …: the cluster's certificates, made on the operator's machine (no coordinator needed): one CA, a
// certificate for each coordinator, each agent (its machine's name) and each operator (a name and a role).
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { ValidationError } from '@slotctl/shared';
import { describeCertificate, initPki, issueToDirectory, OPERATOR_ROLES, type Role } from '@slotctl/shared/pki';
import { positive, printJson } from '../context.js';

const KINDS = ['agent', 'coordinator', 'operator'] as const;

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
Renewal is the same issue again: daemons read renewed files within 10 s, open connections go on.`,
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
        'coordinator host), or operator (NAME is the person; --role says what they may do). Writes ROLE-NAME.crt and ' +
        'ROLE-NAME.key (0600) to --out, with the CA\'s certificate beside them.',
    )
    .requiredOption('--dir <dir>', 'the PKI directory (with the CA)')
    .option('--out <dir>', 'where to write the files (default: --dir)')
    .option('--role <role>', `an operator's role: ${OPERATOR_ROLES.join(', ')} (reader: look; operator: planned moves, cleanup; admin: everything)`, 'reader')
    .option('--days <n>', 'validity', '365')
    .option('--json', 'print as JSON')
    .action(async (kind: string, name: string, opts: { dir: string; out?: string; role: string; days: string; json?: boolean }) => {
      if (!(KINDS as readonly string[]).includes(kind)) throw new ValidationError(`unknown kind "${kind}"`, { hint: `one of ${KINDS.join(', ')}` });
      if (kind === 'operator' && !(OPERATOR_ROLES as readonly string[]).includes(opts.role)) throw new ValidationError(`unknown role "${opts.role}"`, { hint: `one of ${OPERATOR_ROLES.join(', ')}` });
      const role = (kind === 'operator' ? opts.role : kind) as Role;
      const written = await issueToDirectory(opts.dir, { role, name }, { days: positive(opts.days, '--days'), out: opts.out });
      if (opts.json) printJson({ role, name, ...written, notAfter: written.notAfter.toISOString() });
      else process.stdout.write(`${role} ${name}: ${written.cert} and ${written.key} (0600), CA ${written.ca}; valid until ${written.notAfter.toISOString()}\n`);
    });

  pki
    .command('show <file>')
    .description('What a certificate says: name, role, issuer, validity, fingerprint.')
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
        process.stdout.write(`${who}\n  subject ${info.subject}\n  issuer ${info.issuer}\n  valid ${info.notBefore.toISOString()} – ${info.notAfter.toISOString()}\n  sha256 ${info.fingerprint}\n`);
      }
    });
}
