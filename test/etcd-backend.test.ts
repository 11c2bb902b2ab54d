// The etcd backend against a real etcd: what one leader writes, the next one reads back row for row; a deposed
// leader's write changes nothing; a change too large for one etcd transaction (journal), a value too large for
// one etcd value (parts), a journal left half applied; heartbeats write nothing; a transaction that reaches etcd late
// changes nothing, and one retried after its answer was lost is written once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Etcd3, type ITxnRequest, type KVClient } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { applyCluster } from '../packages/coordinator/src/cluster/apply.js';
import { dumpRows } from '../packages/coordinator/src/db/dump.js';
import { etcdBackend, type EtcdBackend } from '../packages/coordinator/src/db/etcd/index.js';
import { EtcdKeys } from '../packages/coordinator/src/db/etcd/keys.js';
import { encodeOps, EtcdWriter } from '../packages/coordinator/src/db/etcd/writer.js';
import { Leadership } from '../packages/coordinator/src/ha/leadership.js';
import { STATE_TABLES } from '../packages/coordinator/src/db/tables.js';
import type Database from 'better-sqlite3';

const log = createLogger('test', { level: process.env.SLOTCTL_TEST_LOG ?? 'silent' });
let etcd: ResultPromise | undefined;
let dir: string;
let client: Etcd3;
const PORT = 23790 + Math.floor(Math.random() * 100);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'slotctl-etcd-'));
  etcd = execa('etcd', ['--name', 'e1', '--data-dir', join(dir, 'e1'), '--listen-client-urls', `http://127.0.0.1:${PORT}`, '--advertise-client-urls', `http://127.0.0.1:${PORT}`, '--listen-peer-urls', `http://127.0.0.1:${PORT + 1000}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${PORT + 1000}`, '--initial-cluster', `e1=http://127.0.0.1:${PORT + 1000}`], { reject: false, stdio: 'ignore' });
  client = new Etcd3({ hosts: `http://127.0.0.1:${PORT}` });
  for (let i = 0; ; i++) {
    try {
      await client.get('probe');
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 30_000);

afterAll(async () => {
  client?.close();
  if (etcd?.pid) process.kill(etcd.pid, 'SIGKILL');
  await etcd;
  rmSync(dir, { recursive: true, force: true });
});

function cluster(stores: number): string {
  const lines = ['machines:'];
  for (const m of ['m1', 'm2']) lines.push(`  - { name: ${m}, address: 127.0.10.${m.slice(1)} }`);
  lines.push('stores:');
  for (let i = 1; i <= stores; i++) {
    const s = `s${String(i).padStart(4, '0')}`;
    const [a, b] = [Math.floor(i / 250), i % 250];
    lines.push(`  - name: ${s}`, `    service_ip: 10.20.${a}.${b + 1}`, `    master: m1`, `    slots:`);
    lines.push(`      - { machine: m1, ip: 10.21.${a}.${b + 1}, data_path: /srv/${s}/data, meta_path: /srv/${s}/meta }`);
    lines.push(`      - { machine: m2, ip: 10.22.${a}.${b + 1}, data_path: /srv/${s}/data, meta_path: /srv/${s}/meta }`);
  }
  return lines.join('\n');
}

/** Rows without the columns a backend keeps only coarsely. */
function comparable(db: Database.Database) {
  const rows = dumpRows(db);
  for (const t of STATE_TABLES) for (const row of rows[t.name]!) for (const c of t.coarse ?? []) delete row[c];
  return rows;
}

async function lead(prefix: string, id: string): Promise<{ leadership: Leadership; backend: EtcdBackend }> {
  const keys = new EtcdKeys(prefix);
  const leadership = new Leadership({ client, keys, me: { id, address: `${id}:7400`, since: '' }, ttlSeconds: 2, log });
  const term = await leadership.campaign();
  const backend = await etcdBackend({ kv: client.kv, prefix, term, leaderUntil: () => leadership.until(), log, flushMs: 50 });
  return { leadership, backend };
}

const dbOf = (b: EtcdBackend) => (b.storage as unknown as { stores: { db: Database.Database } }).stores.db;

describe('etcd backend', () => {
  it('the next leader reads back what the last one wrote, row for row; a deposed leader writes nothing', async () => {
    const a = await lead('/t1', 'a');
    const outcome = applyCluster(a.backend.storage, cluster(3), { dryRun: false, prune: false, source: 'test' });
    expect(outcome.applied).toBe(true);
    const epoch = a.backend.storage.stores.setMaster('s0001', 's0001-m2', 1, 'test');
    a.backend.storage.events.append({ kind: 'test.event', reason: 'x', data: { n: 1 } });
    await a.backend.durable();
    const before = comparable(dbOf(a.backend));
    const events = a.backend.storage.events.list({ limit: 100 }).length;
    // a is cut off: its lease revoked behind its back, b takes over
    await client.leaseClient.leaseRevoke({ ID: (a.leadership as unknown as { leaseId: string }).leaseId });
    const b = await lead('/t1', 'b');
    expect(comparable(dbOf(b.backend))).toEqual(before);
    expect(b.backend.storage.stores.get('s0001')!.epoch).toBe(epoch);
    // a, deposed, still thinks it leads until its lease's deadline: its write must not reach etcd
    a.backend.storage.stores.setMaster('s0002', 's0002-m2', 1, 'deposed');
    await expect(a.backend.durable()).rejects.toThrow(/no longer the leader|lease ran out/);
    b.backend.storage.events.append({ kind: 'test.b', reason: 'b' });
    await b.backend.durable();
    await b.leadership.resign();
    const c = await lead('/t1', 'c');
    expect(c.backend.storage.stores.get('s0002')!.masterSlot).toBe('s0002-m1');
    expect(c.backend.storage.events.list({ limit: 100 }).length).toBe(events + 1);
    for (const x of [a, b, c]) x.backend.close();
    await c.leadership.resign();
    await a.leadership.resign();
  }, 30_000);

  it('a change larger than one etcd transaction goes through the journal; a value larger than one etcd value in parts', async () => {
    const a = await lead('/t2', 'a');
    const before = a.backend.transactions();
    expect(applyCluster(a.backend.storage, cluster(300), { dryRun: false, prune: false, source: 'test' }).applied).toBe(true);
    await a.backend.durable();
    expect(a.backend.transactions() - before).toBeGreaterThan(10); // parts, ready, batches, the journal deleted
    const big = { op: 'op-1', mailboxes: Array.from({ length: 20_000 }, (_, i) => ({ name: `user.u${i}`, exists: true, uniqueid: `uid-${i}`, messages: i, uidvalidity: 1, lastUid: i, highestModseq: i })), error: '' };
    a.backend.storage.transaction(() => {
      a.backend.storage.slots.saveReports('m1', [{ slot: 's0001-m1', state: 'RUNNING', role: 'MASTER', epochApplied: 1, backlog: { files: 0, bytes: 0, mailboxes: 0, oldestChangeAgeMs: 0, stalled: false, stallReason: '', mailboxNames: [] }, lastError: '', pid: 1, stateReason: '', crashes: 0, recentLog: [], syncConfirmedEpoch: 0, recoverListening: '', results: { check: big } } as never]);
    });
    await a.backend.durable();
    const parts = await client.getAll().prefix('/t2/parts/').keys();
    expect(parts.length).toBeGreaterThan(1);
    const expected = comparable(dbOf(a.backend));
    await a.leadership.resign();
    const b = await lead('/t2', 'b');
    expect(comparable(dbOf(b.backend))).toEqual(expected);
    // written small again: its parts go
    b.backend.storage.transaction(() => {
      b.backend.storage.slots.saveReports('m1', [{ slot: 's0001-m1', state: 'RUNNING', role: 'MASTER', epochApplied: 1, backlog: { files: 0, bytes: 0, mailboxes: 0, oldestChangeAgeMs: 0, stalled: false, stallReason: '', mailboxNames: [] }, lastError: '', pid: 1, stateReason: '', crashes: 0, recentLog: [], syncConfirmedEpoch: 0, recoverListening: '', results: { check: { op: 'op-2', mailboxes: [], error: '' } } } as never]);
    });
    await b.backend.durable();
    expect(await client.getAll().prefix('/t2/parts/').keys()).toEqual([]);
    a.backend.close();
    b.backend.close();
    await b.leadership.resign();
  }, 60_000);

  it('a journal committed but not applied by a leader that died is applied by the next', async () => {
    const a = await lead('/t3', 'a');
    expect(applyCluster(a.backend.storage, cluster(2), { dryRun: false, prune: false, source: 'test' }).applied).toBe(true);
    await a.backend.durable();
    a.backend.close();
    await a.leadership.resign();
    // what a leader that died after journal/ready leaves: the parts and ready, none of the rows applied
    const keys = new EtcdKeys('/t3');
    const row = JSON.parse((await client.get(keys.rows + 'settings/x')) ?? 'null');
    expect(row).toBeNull();
    await client.put(keys.journalPart('9-1-0', 0)).value(encodeOps([{ key: keys.rows + 'settings/x', value: JSON.stringify({ key: 'x', value: '"journaled"' }) }]));
    await client.put(keys.journalPart('9-2-0', 0)).value('garbage of a journal never committed');
    await client.put(keys.journalReady).value(JSON.stringify({ id: '9-1-0', parts: 1 }));
    const b = await lead('/t3', 'b');
    expect(b.backend.storage.settings.get('x')).toBe('"journaled"');
    expect(await client.getAll().prefix(keys.journal).keys()).toEqual([]);
    b.backend.close();
    await b.leadership.resign();
  }, 30_000);

  it('heartbeats write nothing to etcd; a change of liveness state does', async () => {
    const a = await lead('/t4', 'a');
    expect(applyCluster(a.backend.storage, cluster(1), { dryRun: false, prune: false, source: 'test' }).applied).toBe(true);
    await a.backend.durable();
    const before = a.backend.transactions();
    for (let i = 0; i < 200; i++) a.backend.storage.transaction(() => a.backend.storage.machines.recordHeartbeat('m1', new Date().toISOString()));
    await a.backend.durable();
    expect(a.backend.transactions()).toBe(before);
    a.backend.storage.machines.setState('m1', 'up', 'heartbeat');
    await a.backend.durable();
    expect(a.backend.transactions()).toBe(before + 1);
    a.backend.close();
    await a.leadership.resign();
  }, 30_000);
  it('a table this build does not know (a newer coordinator wrote it) stops the read, whichever tables lie around it', async () => {
    const a = await lead('/t5', 'a');
    expect(applyCluster(a.backend.storage, cluster(2), { dryRun: false, prune: false, source: 'test' }).applied).toBe(true);
    await a.backend.durable();
    a.backend.close();
    await a.leadership.resign();
    // read by the span between two tables (slots < spools < stores)
    await client.put('/t5/rows/spools/x').value('{}');
    const leadership = new Leadership({ client, keys: new EtcdKeys('/t5'), me: { id: 'b', address: 'b:7400', since: '' }, ttlSeconds: 2, log });
    const term = await leadership.campaign();
    await expect(etcdBackend({ kv: client.kv, prefix: '/t5', term, leaderUntil: () => leadership.until(), log })).rejects.toThrow(/unknown table "spools"/);
    await leadership.resign();
  }, 30_000);

  it('a transaction that reaches etcd late, after the ones that followed it, changes nothing; a retry whose first try was applied counts as written', async () => {
    const keys = new EtcdKeys('/t9');
    const leadership = new Leadership({ client, keys, me: { id: 'w', address: 'w:7400', since: '' }, ttlSeconds: 2, log });
    const term = await leadership.campaign();
    const sent: ITxnRequest[] = [];
    let loseNextAnswer = false;
    // the leader's etcd client, recording what it sends; once, an answer lost on the way back (etcd applied it)
    const kv = {
      range: (req: never, opts: never) => client.kv.range(req, opts),
      txn: async (req: ITxnRequest, opts: never) => {
        sent.push(req);
        const res = await client.kv.txn(req, opts);
        if (loseNextAnswer) {
          loseNextAnswer = false;
          throw new Error('14 UNAVAILABLE: read ECONNRESET');
        }
        return res;
      },
    } as unknown as KVClient;
    const writer = new EtcdWriter({ kv, keys, term, leaderUntil: () => leadership.until(), log });
    const row = `${keys.rows}stores/s1`;
    await writer.write([{ key: row, value: 'epoch 1' }]);
    const late = sent[sent.length - 1]!;
    await writer.write([{ key: row, value: 'epoch 2' }]);
    // the first try of "epoch 1", held by a hung member, proposed after "epoch 2" was written
    const replayed = await client.kv.txn(late);
    expect(replayed.succeeded, 'a late transaction is refused').toBe(false);
    expect(await client.get(row).string()).toBe('epoch 2');
    // an answer lost: the writer tries again, finds its own transaction applied, and goes on
    loseNextAnswer = true;
    await writer.write([{ key: row, value: 'epoch 3' }]);
    await writer.write([{ key: row, value: 'epoch 4' }]);
    expect(writer.failed).toBeUndefined();
    expect(await client.get(row).string()).toBe('epoch 4');
    expect(writer.transactions).toBe(4);
    // someone else wrote under the prefix (or etcd's data went back): this leader stops, it does not write over it
    await client.put(keys.writer).value('{"term":1,"seq":1}');
    await expect(writer.write([{ key: row, value: 'epoch 5' }])).rejects.toThrow(/another writer under this prefix/);
    expect(await client.get(row).string()).toBe('epoch 4');
    await leadership.resign();
  }, 30_000);
});
