import { describe, expect, it } from 'vitest';
import { planCluster, type CurrentCluster } from './plan.js';
import { parseCluster } from '@slotctl/shared/cluster-spec';

const empty: CurrentCluster = { machines: [], stores: [], slots: [], busy: new Set() };

function plan(text: string, current = empty) {
  const parsed = parseCluster(text);
  if (!parsed.spec) return { problems: parsed.problems, changes: [] };
  return planCluster(parsed.spec, current, parsed.locate, false);
}

const file = (slots: string) => `machines:
  - { name: m1, address: 127.0.10.1 }
  - { name: m2, address: 127.0.10.2 }
stores:
  - name: s01
    service_ip: 127.0.20.1
    master: m1
    slots:
${slots}`;

describe('cluster plan', () => {
  it('adds machines and stores to an empty database, master first', () => {
    const result = plan(file(`      - { machine: m1, ip: 127.0.21.1, data_path: /d/1, meta_path: /m/1 }
      - { machine: m2, ip: 127.0.22.1, data_path: /d/1, meta_path: /m/1 }`));
    expect(result.problems).toEqual([]);
    expect(result.changes.map((c) => `${c.action} ${c.kind} ${c.name}`)).toEqual(['add machine m1', 'add machine m2', 'add store s01']);
    expect(result.changes[2]?.detail).toMatch(/master s01-m1, replica s01-m2/);
  });

  it('refuses a partition nested inside another slot\'s partition on the same machine', () => {
    const result = plan(`${file(`      - { machine: m1, ip: 127.0.21.1, data_path: /d/1, meta_path: /m/1 }
      - { machine: m2, ip: 127.0.22.1, data_path: /d/1, meta_path: /m/1 }`)}
  - name: s02
    service_ip: 127.0.20.2
    master: m2
    slots:
      - { machine: m1, ip: 127.0.21.2, data_path: /d/1/inner, meta_path: /m/2 }
      - { machine: m2, ip: 127.0.22.2, data_path: /d/2, meta_path: /m/2 }`);
    expect(result.problems).toEqual([
      expect.objectContaining({ code: 'SharedPartition', line: 15, entry: 's02', path: 'stores[1].slots[0].data_path' }),
    ]);
  });

  it('reports a syntax error with its line', () => {
    expect(plan('machines:\n  - name: m1\n   bad: indent\n').problems[0]).toMatchObject({ code: 'SyntaxError', line: 3 });
  });

  it('refuses a top level that is not a mapping', () => {
    expect(plan('- just\n- a list\n').problems[0]).toMatchObject({ code: 'SchemaError', line: 1 });
  });
});
