import { describe, expect, it } from 'vitest';
import { parseCluster } from './cluster-spec.js';

describe('cluster file: placement fields', () => {
  it('reads slots, rack and disk sizes', () => {
    const parsed = parseCluster('machines:\n  - { name: m1, address: 10.0.0.1, slots: 12, rack: r1, disks: [{ name: hdd0, path: /srv/hdd0, size: 16TB }] }\n');
    expect(parsed.problems).toEqual([]);
    expect(parsed.spec!.machines[0]).toMatchObject({ slots: 12, rack: 'r1', disks: [{ name: 'hdd0', class: 'hdd', size: 16e12 }] });
    expect(parseCluster('machines:\n  - { name: m1, address: 10.0.0.1 }\n').spec!.machines[0]!.slots).toBe(18);
  });

  it('names the line and the entry of a bad size or slot count', () => {
    const parsed = parseCluster('machines:\n  - name: m1\n    address: 10.0.0.1\n    slots: 0\n    disks: [{ name: hdd0, path: /srv/hdd0, size: 16 parsecs }]\n');
    expect(parsed.problems.map((p) => [p.line, p.entry, p.path])).toEqual([
      [4, 'm1', 'machines[0].slots'],
      [5, 'm1/hdd0', 'machines[0].disks[0].size'],
    ]);
    expect(parsed.problems[1]!.message).toMatch(/is not a size/);
  });
});

describe('cluster file: address pools', () => {
  it('reads slot_ips (addresses and IPv4 ranges), none by default, and names a bad entry as an address problem', () => {
    expect(parseCluster('machines:\n  - { name: m1, address: 10.0.0.1, slot_ips: [10.0.1.10-10.0.1.40, 10.0.2.5] }\n').spec!.machines[0]!.slot_ips).toEqual(['10.0.1.10-10.0.1.40', '10.0.2.5']);
    expect(parseCluster('machines:\n  - { name: m1, address: 10.0.0.1 }\n').spec!.machines[0]!.slot_ips).toEqual([]);
    const bad = parseCluster('machines:\n  - name: m1\n    address: 10.0.0.1\n    slot_ips: [10.0.1.40-10.0.1.10]\n');
    expect(bad.problems.map((p) => [p.line, p.code, p.path])).toEqual([[4, 'InvalidAddress', 'machines[0].slot_ips[0]']]);
    expect(bad.problems[0]!.message).toMatch(/ends before it begins/);
  });
});

describe('cluster file: event retention', () => {
  it('reads `events: keep`, 90 days by default, and refuses less than a day with its line', () => {
    expect(parseCluster('events: { keep: 30d }\n').spec!.events).toEqual({ keep: '30d' });
    expect(parseCluster('events: {}\n').spec!.events).toEqual({ keep: '90d' });
    expect(parseCluster('machines: []\n').spec!.events).toBeUndefined();
    const short = parseCluster('machines: []\nevents:\n  keep: 2h\n');
    expect(short.problems.map((p) => [p.line, p.path, p.message])).toEqual([[3, 'events.keep', expect.stringMatching(/at least a day/)]]);
  });
});
