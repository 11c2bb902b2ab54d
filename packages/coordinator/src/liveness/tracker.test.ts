// The tracker on a clock the test moves: what it declares, when, and the reason it writes.
import { describe, expect, it } from 'vitest';
import { createLogger } from '@slotctl/shared';
import { openMemoryDatabase } from '../db/open.js';
import { sqliteStorage } from '../db/sqlite/index.js';
import { LivenessTracker } from './tracker.js';

function tracker(startMs: number) {
  const db = openMemoryDatabase();
  db.prepare("INSERT INTO machines (name, address, created_at, state_since, state) VALUES ('m1', '10.0.0.1', 'x', 'x', 'up')").run();
  const storage = sqliteStorage(db);
  let now = startMs;
  const t = new LivenessTracker(storage, { heartbeatIntervalMs: 1000, leaseMs: 5000 }, createLogger('test', { level: 'silent' }), () => now);
  t.reload();
  return { t, storage, advance: (ms: number) => (now += ms) };
}

describe('LivenessTracker', () => {
  it('says the restart hold it granted in whole milliseconds, whatever the clock reads (a reason once said 2999.9999999999964 ms)', () => {
    // a monotonic clock value whose fractional part does not survive + 3000 − itself exactly
    const { t, storage, advance } = tracker(4_192_969.2327085068); // + 3000 − itself = 2999.9999999995343
    t.heard('m1');
    t.hold('m1', 3000, 'restarting');
    advance(8999);
    t.tick();
    expect(storage.machines.get('m1')?.state, 'before lease + hold + margin').not.toBe('down');
    advance(2);
    t.tick();
    expect(storage.machines.get('m1')!.state).toBe('down');
    const down = storage.events.list({ machine: 'm1', limit: 10 }).find((e) => e.kind === 'machine.down');
    expect(down?.reason).toMatch(/^lease of 5000 ms \(\+ a restart hold of 3000 ms: its agent said it was restarting\) \(\+ 1000 ms margin\) expired: no heartbeat for 9001 ms/);
  });

  it('says a start hold was asked for because slots were starting, and keeps it across the heartbeats that ride it', () => {
    const { t, storage, advance } = tracker(1000);
    for (let i = 0; i < 4; i++) {
      t.heard('m1');
      t.hold('m1', 3000, 'starting');
      advance(250);
    }
    advance(8750); // 9000 after the last heartbeat: lease 5000 + hold 3000 + margin 1000
    t.tick();
    const down = storage.events.list({ machine: 'm1', limit: 10 }).find((e) => e.kind === 'machine.down');
    expect(down?.reason).toMatch(/^lease of 5000 ms \(\+ a start hold of 3000 ms: its agent said it was starting slots\)/);
  });

  it('says a hold once when it begins, again only after it lapsed or for a hold of another kind', () => {
    const lines: string[] = [];
    const db = openMemoryDatabase();
    db.prepare("INSERT INTO machines (name, address, created_at, state_since, state) VALUES ('m1', '10.0.0.1', 'x', 'x', 'up')").run();
    let now = 1000;
    const log = createLogger('test', { level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const t = new LivenessTracker(sqliteStorage(db), { heartbeatIntervalMs: 250, leaseMs: 2000 }, log, () => now);
    t.reload();
    const beat = (why: 'starting' | 'restarting') => {
      t.heard('m1');
      t.hold('m1', 3000, why);
      now += 250;
    };
    const said = () => lines.filter((l) => l.includes('its lease is held')).length;
    for (let i = 0; i < 8; i++) beat('starting');
    expect(said()).toBe(1);
    beat('restarting');
    expect(said()).toBe(2);
    now += 3500; // the hold lapsed
    beat('starting');
    expect(said()).toBe(3);
  });
});
