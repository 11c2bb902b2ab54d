// A cluster's state moved between backends and copied while it is written: slot-coordinator backup of the live SQLite
// file (SQLite's online backup API) while a coordinator applies changes, and export → import → export through etcd
// and back into a new SQLite file, row for row. Real processes, real etcd with mutual TLS; no Cyrus (state only).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, LocalCluster } from '../tools/local-cluster.js';
import { HARNESS_COORDINATOR, tlsArgs } from '../tools/test-pki.js';
import { startEtcd } from './support/etcd.js';
import { TWO_MACHINES, dumpDatabase, removeDir, tempDir } from './support/fixtures.js';

const root = tempDir('state-move');
afterAll(() => removeDir(root));

const coordinator = (args: string[]) => execa('node', [BIN.coordinator, ...args], { reject: false, timeout: 60_000 });

/** Many stores: a cluster file large enough that a backup and an export span many database pages. */
function bigCluster(stores: number, tag: string): string {
  const lines = ['machines:', '  - { name: m1, address: 127.0.10.1 }', '  - { name: m2, address: 127.0.10.2 }', 'stores:'];
  for (let i = 1; i <= stores; i++) {
    const ip = (n: number) => `10.${n + (tag === 's' ? 0 : 10)}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    lines.push(`  - name: ${tag}${i}`, `    service_ip: ${ip(20)}`, '    master: m1', '    slots:');
    lines.push(`      - { machine: m1, ip: ${ip(21)}, data_path: /srv/${tag}${i}/data, meta_path: /srv/${tag}${i}/meta }`);
    lines.push(`      - { machine: m2, ip: ${ip(22)}, data_path: /srv/${tag}${i}/data, meta_path: /srv/${tag}${i}/meta }`);
  }
  return lines.join('\n');
}

describe('moving and copying the cluster state', () => {
  it('backs up the live database while the coordinator writes: the copy opens, is whole, and holds a consistent moment', async () => {
    const cluster = new LocalCluster({ dir: join(root, 'backup'), lease: '120s' });
    try {
      await cluster.startCoordinator();
      const applied = await cluster.slotctl(['cluster', 'apply', '-'], bigCluster(400, 's'));
      expect(applied.exitCode, applied.stdout + applied.stderr).toBe(0);
      // writes go on during the backup: another apply (400 more stores) and its events
      const writing = cluster.slotctl(['cluster', 'apply', '-'], `${bigCluster(400, 's')}\n${bigCluster(400, 't').split('\n').slice(4).join('\n')}`);
      const copy = join(root, 'backup', 'copy.db');
      const backup = await coordinator(['backup', '--db', cluster.databasePath, '--to', copy]);
      expect(backup.exitCode, backup.stderr).toBe(0);
      expect(backup.stdout).toMatch(/backed up .* to .*copy\.db: machines 2, stores (400|800), slots (800|1600)/);
      const wrote = await writing;
      expect(wrote.exitCode, wrote.stdout + wrote.stderr).toBe(0);
      const rows = dumpDatabase(copy);
      // one moment: either before the second apply or after it, never half of it
      expect([400, 800]).toContain(rows.stores!.length);
      expect(rows.slots!.length).toBe(rows.stores!.length * 2);
      // the copy is a database a coordinator starts on
      const again = await coordinator(['backup', '--db', cluster.databasePath, '--to', copy]);
      expect(again.exitCode).toBe(1);
      expect(again.stderr).toMatch(/copy\.db exists/);
    } finally {
      await cluster.stopAll();
    }
  }, 120_000);

  it('moves a cluster SQLite → etcd → SQLite: the same rows, the same event ids; an import never overwrites', async () => {
    const cluster = new LocalCluster({ dir: join(root, 'move'), lease: '120s' });
    const etcd = await startEtcd({ members: 1, dir: join(root, 'etcd') });
    try {
      await cluster.startCoordinator();
      expect((await cluster.slotctl(['cluster', 'apply', '-'], TWO_MACHINES)).exitCode).toBe(0);
      expect((await cluster.slotctl(['store', 'switchover', 's01', '--dry-run'])).exitCode).toBeLessThan(2);
      await cluster.coordinator!.stop();
      const first = join(root, 'move', 'first.json');
      expect((await coordinator(['export', '--db', cluster.databasePath, '--out', first])).exitCode).toBe(0);
      const tls = etcd.clientTls;
      const etcdArgs = ['--store', 'etcd', '--etcd-endpoints', etcd.endpoints.join(','), '--etcd-ca', tls.ca, '--etcd-cert', tls.cert, '--etcd-key', tls.key, ...tlsArgs(cluster.pkiDir, HARNESS_COORDINATOR)];
      const imported = await coordinator(['import', first, ...etcdArgs]);
      expect(imported.exitCode, imported.stderr).toBe(0);
      const twice = await coordinator(['import', first, ...etcdArgs]);
      expect(twice.exitCode).toBe(1);
      expect(twice.stderr).toMatch(/etcd already holds \d+ key\(s\) under \/slotctl/);
      const second = join(root, 'move', 'second.json');
      const exported = await coordinator(['export', '--out', second, ...etcdArgs]);
      expect(exported.exitCode, exported.stderr).toBe(0);
      const back = join(root, 'move', 'back.db');
      expect((await coordinator(['import', second, '--db', back])).exitCode).toBe(0);
      const a = JSON.parse(readFileSync(first, 'utf8')) as { tables: unknown; eventsSeq: number; schema: number };
      const b = JSON.parse(readFileSync(second, 'utf8')) as { tables: unknown; eventsSeq: number; schema: number };
      expect(b.tables).toEqual(a.tables);
      expect([b.eventsSeq, b.schema]).toEqual([a.eventsSeq, a.schema]);
      const original = dumpDatabase(cluster.databasePath);
      const rebuilt = dumpDatabase(back);
      delete original.slot_reports;
      delete rebuilt.slot_reports;
      // the same rows (in whatever physical order the import wrote them)
      const sorted = (rows: unknown[] = []) => rows.map((r) => JSON.stringify(r)).sort();
      for (const t of Object.keys(original)) expect(sorted(rebuilt[t]), t).toEqual(sorted(original[t]));
      const over = await coordinator(['import', second, '--db', back]);
      expect(over.exitCode).toBe(1);
      expect(over.stderr).toMatch(/back\.db exists/);
    } finally {
      await cluster.stopAll();
      await etcd.stop();
    }
  }, 120_000);
});
