// The subcommands of slot-coordinator that move a cluster's state (see state-commands.ts). They read the same
// --store/--db/--etcd-* flags as the daemon, given before or after the subcommand.
import { join } from 'node:path';
import type { Command } from 'commander';
import { createLogger, describeError, isUserError, type TlsFlags } from '@slotctl/shared';
import { etcdClientFromFlags, type EtcdFlags } from './etcd-flags.js';
import { backupSqlite, exportEtcd, exportSqlite, importEtcd, importSqlite, readExport, writeExport } from './state-commands.js';

type StoreFlags = TlsFlags & EtcdFlags & { store: 'sqlite' | 'etcd'; dataDir: string; db?: string; logLevel: string };

async function run(what: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    console.error(`slot-coordinator ${what}: ${describeError(err)}`);
    if (!isUserError(err)) console.error((err as Error).stack);
    process.exitCode = isUserError(err) ? 1 : 2;
  }
}

const summary = (counts: Record<string, number>) => Object.entries(counts).map(([t, n]) => `${t} ${n}`).join(', ');

export function registerStateCommands(program: Command): void {
  const dbOf = (o: StoreFlags) => o.db ?? join(o.dataDir, 'coordinator.db');

  program
    .command('export')
    .description("Writes the cluster's whole state (every row, the schema, the event ids) as JSON, from the backend --store names; safe while coordinators run.")
    .option('--out <file>', 'write to FILE (mode 0600: the state names every machine and address) instead of stdout')
    .action(async function (this: Command, o: { out?: string }) {
      const flags = this.optsWithGlobals<StoreFlags>();
      await run('export', async () => {
        if (flags.store === 'sqlite') return writeExport(exportSqlite(dbOf(flags)), o.out);
        const client = etcdClientFromFlags(flags);
        try {
          await writeExport(await exportEtcd(client, flags.etcdPrefix), o.out);
        } finally {
          client.close();
        }
      });
    });

  program
    .command('import')
    .description('Rebuilds a cluster from an export into the backend --store names, which must be empty (a new SQLite file, or an etcd prefix with no key): same epochs, operations and event ids.')
    .argument('<file>', 'an export ("-": stdin)')
    .action(async function (this: Command, file: string) {
      const flags = this.optsWithGlobals<StoreFlags>();
      await run('import', async () => {
        const data = readExport(file);
        if (flags.store === 'sqlite') {
          const counts = await importSqlite(data, dbOf(flags));
          console.log(`imported into ${dbOf(flags)}: ${summary(counts)}`);
          return;
        }
        const client = etcdClientFromFlags(flags);
        try {
          const counts = await importEtcd(data, client, flags.etcdPrefix, createLogger('slot-coordinator', { level: flags.logLevel === 'info' ? 'warn' : flags.logLevel }));
          console.log(`imported into etcd ${flags.etcdPrefix}: ${summary(counts)}`);
        } finally {
          client.close();
        }
      });
    });

  program
    .command('backup')
    .description('An online copy of the SQLite database (SQLite\'s backup API: consistent while the coordinator writes), checked as a coordinator would check it at start. For etcd: etcdctl snapshot save, or slot-coordinator export.')
    .requiredOption('--to <file>', 'the copy (a new file: never overwritten)')
    .action(async function (this: Command, o: { to: string }) {
      const flags = this.optsWithGlobals<StoreFlags>();
      await run('backup', async () => {
        if (flags.store !== 'sqlite') throw new Error('backup copies the SQLite file; for etcd use `etcdctl snapshot save` or `slot-coordinator export`');
        const counts = await backupSqlite(dbOf(flags), o.to);
        console.log(`backed up ${dbOf(flags)} to ${o.to}: ${summary(counts)}`);
      });
    });
}
