// cluster apply against a real coordinator process and its real SQLite file: every kind of bad input is refused
// with a named error and the line it is on, and the database is left exactly as it was.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, waitFor } from '../tools/local-cluster.js';
import { TWO_MACHINES, dumpDatabase, removeDir, tempDir } from './support/fixtures.js';

const dir = tempDir('apply');
// A long lease: no machine changes state while the database is compared before and after.
const cluster = new LocalCluster({ dir, lease: '120s' });

beforeAll(async () => {
  await cluster.startCoordinator();
  const first = await cluster.slotctl(['cluster', 'apply', '-'], TWO_MACHINES);
  expect(first.exitCode, first.stderr).toBe(0);
});

afterAll(async () => {
  await cluster.stopAll();
  removeDir(dir);
});

const replace = (from: string, to: string) => {
  expect(TWO_MACHINES).toContain(from);
  return TWO_MACHINES.replace(from, to);
};

interface BadInput {
  what: string;
  text: string;
  code: string;
  /** Text that ends on the line the problem must be reported at. */
  at: string;
  message: RegExp;
}



const BAD: BadInput[] = [
  { what: 'YAML syntax', text: replace('master: m2', 'master: m2: m1'), code: 'SyntaxError', at: 'master: m2: m1', message: /./ },
  { what: 'an unknown key (typo)', text: replace('service_ip: 127.0.20.2', 'service_ipp: 127.0.20.2'), code: 'SchemaError', at: 'service_ipp', message: /service_ipp/ },
  { what: 'a duplicate machine name', text: replace('name: m2\n', 'name: m1\n'), code: 'DuplicateName', at: 'address: 127.0.10.1\n  - name: m1', message: /machine name "m1".*already used/ },
  { what: 'a duplicate store name', text: replace('name: s02', 'name: s01'), code: 'DuplicateName', at: 'meta_path: /srv/m2/s01/meta }\n  - name: s01', message: /store name "s01"/ },
  { what: 'a duplicate machine address', text: replace('address: 127.0.10.2', 'address: 127.0.10.1'), code: 'DuplicateAddress', at: 'name: m2\n    address: 127.0.10.1', message: /127\.0\.10\.1.*machine m1/ },
  { what: 'a slot IP used twice', text: replace('ip: 127.0.22.2', 'ip: 127.0.21.1'), code: 'DuplicateAddress', at: 'ip: 127.0.21.1, data_path: /srv/m2/s02', message: /127\.0\.21\.1/ },
  { what: 'a service IP that is a slot IP', text: replace('service_ip: 127.0.20.2', 'service_ip: 127.0.22.1'), code: 'DuplicateAddress', at: 'service_ip: 127.0.22.1', message: /127\.0\.22\.1/ },
  { what: 'both slots on one machine', text: replace('{ machine: m2, ip: 127.0.22.1', '{ machine: m1, ip: 127.0.22.1'), code: 'SameMachine', at: 'ip: 127.0.22.1', message: /both slots are on machine m1/ },
  { what: 'an unknown machine', text: replace('{ machine: m2, ip: 127.0.22.2', '{ machine: m9, ip: 127.0.22.2'), code: 'UnknownMachine', at: 'machine: m9', message: /unknown machine "m9"/ },
  { what: 'a master that is not one of the slots', text: replace('master: m2', 'master: m3'), code: 'UnknownMaster', at: 'master: m3', message: /master "m3"/ },
  { what: 'a relative path', text: replace('data_path: /srv/m1/s01/data', 'data_path: srv/m1/s01/data'), code: 'InvalidPath', at: 'data_path: srv/m1', message: /must be absolute/ },
  { what: 'a path with ..', text: replace('meta_path: /srv/m2/s02/meta', 'meta_path: /srv/m2/../../etc'), code: 'InvalidPath', at: '/srv/m2/../../etc', message: /\.\./ },
  { what: 'two slots sharing a partition', text: replace('data_path: /srv/m1/s02/data', 'data_path: /srv/m1/s01/data'), code: 'SharedPartition', at: 'ip: 127.0.21.2', message: /overlaps/ },
  { what: 'a bad address', text: replace('address: 127.0.10.2', 'address: 127.0.10.300'), code: 'InvalidAddress', at: '127.0.10.300', message: /not an IPv4/ },
  { what: 'a bad name', text: replace('name: s02', 'name: S 02'), code: 'InvalidName', at: 'S 02', message: /not a valid name/ },
  { what: 'a store with three slots', text: replace('      - { machine: m2, ip: 127.0.22.2', '      - { machine: m2, ip: 127.0.22.9, data_path: /x/a, meta_path: /x/b }\n      - { machine: m2, ip: 127.0.22.2'), code: 'SchemaError', at: 'slots:\n      - { machine: m1, ip: 127.0.21.2', message: /exactly two slots/ },
  { what: 'an existing slot moved to another machine', text: replace('  - name: m2\n', '  - name: m2\n    address: 127.0.10.2\n  - name: m3\n').replace('address: 127.0.10.2\n    address: 127.0.10.2', 'address: 127.0.10.2').replace('- { machine: m2, ip: 127.0.22.1', '- { name: s01-m2, machine: m3, ip: 127.0.22.1'), code: 'SlotMoved', at: 'machine: m3, ip: 127.0.22.1', message: /cannot move a slot/ },
];

describe('slotctl cluster apply refuses bad input and writes nothing', () => {
  for (const bad of BAD) {
    it(`refuses ${bad.what}`, async () => {
      const before = dumpDatabase(cluster.databasePath);
      const result = await cluster.slotctl(['cluster', 'apply', '-', '--json'], bad.text);
      expect(result.exitCode, result.stderr).toBe(1);
      const reply = JSON.parse(result.stdout) as { ok: boolean; applied: boolean; problems: { code: string; line: number; message: string }[] };
      expect(reply.ok).toBe(false);
      expect(reply.applied).toBe(false);
      const problem = reply.problems.find((p) => p.code === bad.code);
      expect(problem, JSON.stringify(reply.problems)).toBeDefined();
      expect(problem!.message).toMatch(bad.message);
      const index = bad.text.indexOf(bad.at);
      expect(index, `marker ${bad.at}`).toBeGreaterThanOrEqual(0);
      const line = bad.text.slice(0, index + bad.at.length).split('\n').length;
      expect(problem!.line).toBe(line);
      expect(dumpDatabase(cluster.databasePath)).toEqual(before);
      // and the text output names the problem and says nothing was changed
      const text = await cluster.slotctl(['cluster', 'apply', '-'], bad.text);
      expect(text.exitCode).toBe(1);
      expect(text.stdout).toContain(bad.code);
      expect(text.stdout).toContain('nothing was changed');
    });
  }

  it('refuses to move the master of a store that has an operation under way', async () => {
    // Operations are written by the orchestrator; here one is recorded directly as a switchover waiting for its
    // old master to stop (no agent runs here, so it waits until its 10-minute timeout).
    const db = new Database(cluster.databasePath);
    const params = { from: 's01-m1', to: 's01-m2', fromMachine: 'm1', toMachine: 'm2', epoch: 1, timeoutMs: 600_000, settleTimeoutMs: 60_000, maxBacklogMailboxes: 1000 };
    const now = new Date().toISOString();
    db.prepare("INSERT INTO operations (id, kind, store, state, step, step_since, params, created_at, updated_at) VALUES ('op-test', 'switchover', 's01', 'running', 'stop-master', ?, ?, ?, ?)").run(now, JSON.stringify(params), now, now);
    db.close();
    try {
      // the orchestrator writes once why the switchover waits (its old master never reports here): the database is
      // compared from then on, so that only what cluster apply might write shows
      await waitFor('the switchover to say why it waits', () => {
        const read = new Database(cluster.databasePath, { readonly: true });
        try {
          return (read.prepare("SELECT waiting FROM operations WHERE id = 'op-test'").get() as { waiting: string } | undefined)?.waiting || undefined;
        } finally {
          read.close();
        }
      }, 10_000, 50);
      const before = dumpDatabase(cluster.databasePath);
      const moved = replace('master: m1', 'master: m2');
      const result = await cluster.slotctl(['cluster', 'apply', '-', '--json'], moved);
      expect(result.exitCode).toBe(1);
      const reply = JSON.parse(result.stdout) as { problems: { code: string; line: number; message: string }[] };
      expect(reply.problems).toEqual([expect.objectContaining({ code: 'StoreBusy', line: 9, message: expect.stringMatching(/s01 has an operation under way/) })]);
      expect(dumpDatabase(cluster.databasePath)).toEqual(before);
    } finally {
      const cleanup = new Database(cluster.databasePath);
      cleanup.prepare("DELETE FROM operations WHERE id = 'op-test'").run();
      cleanup.close();
    }
  });

  it('moves a master of an idle store in one step: epoch + 1 and an event', async () => {
    const moved = replace('master: m1', 'master: m2');
    const dry = await cluster.slotctl(['cluster', 'apply', '-', '--dry-run'], moved);
    expect(dry.exitCode).toBe(0);
    expect(dry.stdout).toMatch(/move-master store\s+s01: master s01-m1 -> s01-m2, epoch 1 -> 2/);
    expect((await cluster.client().listStores()).stores.find((s) => s.name === 's01')?.epoch).toBe(1);

    const applied = await cluster.slotctl(['cluster', 'apply', '-'], moved);
    expect(applied.exitCode, applied.stderr).toBe(0);
    const s01 = (await cluster.client().listStores()).stores.find((s) => s.name === 's01')!;
    expect(s01.epoch).toBe(2);
    expect(s01.master?.name).toBe('s01-m2');
    const events = (await cluster.client().listEvents({ store: 's01', limit: 10 })).events;
    expect(events.at(-1)).toMatchObject({ kind: 'store.master-changed', epoch: 2, slot: 's01-m2' });

    const again = await cluster.slotctl(['cluster', 'apply', '-'], moved);
    expect(again.stdout).toContain('no changes');
  });

  it('accepts the same description as JSON', async () => {
    const json = JSON.stringify({
      machines: [{ name: 'm1', address: '127.0.10.1' }, { name: 'm2', address: '127.0.10.2' }],
      stores: [],
    });
    const result = await cluster.slotctl(['cluster', 'apply', '-', '--json', '--dry-run'], json);
    expect(result.exitCode, result.stdout).toBe(0);
    const reply = JSON.parse(result.stdout) as { changes: { action: string; name: string }[] };
    expect(reply.changes.filter((c) => c.action === 'keep').map((c) => c.name).sort()).toEqual(['s01', 's02']);
  });

  it('keeps entries the file no longer names unless --prune, and then removes them', async () => {
    const onlyS01 = TWO_MACHINES.slice(0, TWO_MACHINES.indexOf('  - name: s02')).replace('master: m1', 'master: m2');
    const kept = await cluster.slotctl(['cluster', 'apply', '-'], onlyS01);
    expect(kept.stdout).toMatch(/keep\s+store\s+s02/);
    expect((await cluster.client().listStores()).stores).toHaveLength(2);
    const pruned = await cluster.slotctl(['cluster', 'apply', '-', '--prune'], onlyS01);
    expect(pruned.exitCode, pruned.stdout).toBe(0);
    expect((await cluster.client().listStores()).stores.map((s) => s.name)).toEqual(['s01']);
  });

  it('says which file could not be read', async () => {
    const result = await cluster.slotctl(['cluster', 'apply', join(dir, 'missing.yaml')]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/cannot read .*missing\.yaml/);
  });
});
