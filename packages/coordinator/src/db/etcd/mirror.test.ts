// The mirror writes changes of state, not measurements: a steady cluster of agents reporting every second writes
// nothing to etcd, while a change of what a backlog names is written at once.
import { describe, expect, it } from 'vitest';
import { openMemoryDatabase } from '../open.js';
import { EtcdKeys } from './keys.js';
import { RowMirror } from './mirror.js';

function cluster() {
  const db = openMemoryDatabase();
  const mirror = new RowMirror(db, new EtcdKeys('/t'), () => undefined);
  db.transaction(() => {
  db.prepare("INSERT INTO machines (name, address, created_at, state_since) VALUES ('m1', '10.0.0.1', 'x', 'x'), ('m2', '10.0.0.2', 'x', 'x')").run();
  db.prepare("INSERT INTO stores (name, service_ip, master_slot, replica_slot, created_at, updated_at) VALUES ('st1', '10.1.0.1', 'a1', 'b1', 'x', 'x')").run();
  db.prepare("INSERT INTO slots (name, store, machine, ip, data_path, meta_path) VALUES ('a1', 'st1', 'm1', '10.2.0.1', '/d/a1', '/m/a1'), ('b1', 'st1', 'm2', '10.2.0.2', '/d/b1', '/m/b1')").run();
  })();
  mirror.collect();
  const report = (backlog: object, partitions: object[], state = 'SERVING') =>
    db.prepare("UPDATE slots SET backlog = ?, partitions = ?, observed_state = ?, reported_at = ? WHERE name = 'a1'").run(JSON.stringify(backlog), JSON.stringify(partitions), state, new Date().toISOString());
  return { db, mirror, report };
}

const backlog = { files: 1, bytes: 2048, mailboxes: 1, mailboxNames: ['user.u1'], oldestChangeAgeMs: 100, stalled: false, stallReason: '' };
const partition = { role: 'data', path: '/d/a1', totalBytes: 1e9, freeBytes: 5e8, totalInodes: 1e6, freeInodes: 5e5, deletedBytes: 0, expungedBytes: 0, measuredAt: '2026-12-04T10:00:00Z', error: '' };

describe('RowMirror', () => {
  it('writes a report that changes state, and not one that only measured again', () => {
    const { db, mirror, report } = cluster();
    report(backlog, [partition]);
    expect(mirror.collect().map((op) => op.key)).toEqual(['/t/rows/slots/a1']);
    report({ ...backlog, oldestChangeAgeMs: 1100 }, [{ ...partition, freeBytes: 4.99e8, freeInodes: 4.99e5, deletedBytes: 10, measuredAt: '2026-12-04T10:00:01Z' }]);
    expect(mirror.collect(), 'the age grew and the disk was measured again: nothing to write').toEqual([]);
    db.prepare("UPDATE slots SET recent_log = ? WHERE name = 'a1'").run(JSON.stringify(['imap[1]: login: u1 User logged in']));
    expect(mirror.collect(), 'a new log line: nothing to write').toEqual([]);
  });

  it('writes at once what the backlog names, and the row whole with its latest measurements', () => {
    const { mirror, report } = cluster();
    report(backlog, [partition]);
    mirror.collect();
    report({ ...backlog, oldestChangeAgeMs: 900, mailboxes: 2, mailboxNames: ['user.u1', 'user.u2'] }, [partition]);
    const ops = mirror.collect();
    expect(ops).toHaveLength(1);
    expect(JSON.parse(JSON.parse(String(ops[0]!.value)).backlog as string)).toMatchObject({ mailboxNames: ['user.u1', 'user.u2'], oldestChangeAgeMs: 900 });
    report({ ...backlog, oldestChangeAgeMs: 50 }, [partition], 'STOPPED');
    expect(mirror.collect(), 'a change of state').toHaveLength(1);
  });

  it('writes a partition whose use moved by a whole percent (its disk level may have changed)', () => {
    const { mirror, report } = cluster();
    report(backlog, [partition]);
    mirror.collect();
    report(backlog, [{ ...partition, freeBytes: 4.95e8 }]);
    expect(mirror.collect(), '50 % used still').toEqual([]);
    report(backlog, [{ ...partition, freeBytes: 4.8e8 }]);
    expect(mirror.collect(), '52 % used').toHaveLength(1);
  });

  it('still writes a partition that appeared or failed to be measured', () => {
    const { mirror, report } = cluster();
    report(backlog, [partition]);
    mirror.collect();
    report(backlog, [{ ...partition, error: 'statfs failed: EACCES' }]);
    expect(mirror.collect()).toHaveLength(1);
    report(backlog, [{ ...partition, error: 'statfs failed: EACCES' }, { ...partition, role: 'meta', path: '/m/a1' }]);
    expect(mirror.collect()).toHaveLength(1);
  });
});
