// The list commands' tables at a terminal's width: slot list, operations list, store at-risk, cleanup status and
// disk status (machine list and store list are status's tables: commands/status.test.ts). Each fits 80 and 100
// columns with every name whole; unlimited, each prints exactly what it printed before fitting existed
// (list-golden/*-wide.txt, written by that code); list-golden/*-80.txt show the narrow layouts for review.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expectGolden } from '../../../test/support/golden.js';
import { NOW, sampleAtRisk, sampleCleanup, sampleDisks, sampleOperations, sampleSlots, sampleStatus } from './cluster-sample.fixture.js';
import { storesTable } from './format.js';
import { cleanupTable } from './commands/cleanup.js';
import { diskTable } from './commands/disk.js';
import { operationsTable } from './commands/operations.js';
import { slotsTable } from './commands/slot.js';
import { atRiskTable } from './commands/store.js';
import { displayWidth } from './table-fit.js';

const golden = (name: string) => join(import.meta.dirname, 'list-golden', name);
const widest = (text: string) => Math.max(...text.split('\n').map(displayWidth));

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

/** Each table with its sample rows and the names that must stay whole at any width. */
const TABLES: [string, (width: number) => string, string[]][] = [
  ['slots', (w) => slotsTable(sampleSlots(), w), sampleSlots().map((s) => s.name)],
  ['operations', (w) => operationsTable(sampleOperations(), w), sampleOperations().flatMap((o) => [o.id, o.store || o.machine].filter(Boolean))],
  ['at-risk', (w) => atRiskTable(sampleAtRisk(), w), sampleAtRisk().flatMap((r) => [r.store, r.slot])],
  ['cleanup', (w) => cleanupTable(sampleCleanup(), w), sampleCleanup().map((r) => r.slot)],
  ['disks', (w) => diskTable(sampleDisks(), w), sampleDisks().map((r) => r.slot)],
];

describe('list tables fit the terminal', () => {
  for (const [name, render, names] of TABLES) {
    it(`${name}: prints every column unlimited, as before`, () => {
      expectGolden(golden(`${name}-wide.txt`), `${render(Infinity)}\n`);
    });

    it(`${name}: fits 80 and 100 columns with every name whole`, () => {
      for (const width of [80, 100]) {
        const text = render(width);
        expect(widest(text), `${name} at ${width}`).toBeLessThanOrEqual(width);
        for (const n of names) expect(text).toMatch(new RegExp(`│ ${n} `));
      }
      expectGolden(golden(`${name}-80.txt`), `${render(80)}\n`);
    });
  }

  it('keeps the backlog figures, the STALLED mark and an operator’s stop at 80 columns (slot list)', () => {
    const text = slotsTable(sampleSlots(), 80);
    expect(text).toMatch(/│ s09-m3 .*│ STALLED 1208 files, 311 mbox, 2h14m │/);
    expect(text).toMatch(/│ s02-m3 .*│ stopped… +│/);
  });
});

describe('store list', () => {
  it('names a replica being moved in beside the replica, until its switch', () => {
    const [store] = sampleStatus().stores;
    const moving = { ...store!.replica!, name: `${store!.name}-m9`, machine: 'm9', state: 'SERVING' };
    const wide = storesTable([{ ...store!, moving }]);
    expect(wide).toContain(`${store!.replica!.name}@${store!.replica!.machine} serving (moving to ${store!.name}-m9@m9 serving)`);
    expect(storesTable([store!])).not.toContain('moving to');
  });
});
