// slotctl status at a terminal's width: the sample cluster (a machine down, one being drained, backlogs, a stall,
// problems, running operations) at 80 and 100 columns keeps every line inside them and what an operator looks for;
// --wide and a pipe print it exactly as before fitting existed (status-golden/wide*.txt, written by that code).
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { expectGolden } from '../../../../test/support/golden.js';
import { HOST_NAMES, NOW, TARGET, sampleStatus } from '../cluster-sample.fixture.js';
import { machinesTable, storesTable } from '../format.js';
import { displayWidth, outputWidth } from '../table-fit.js';
import { statusScreen } from './status.js';

const golden = (name: string) => join(import.meta.dirname, 'status-golden', name);
const widest = (text: string) => Math.max(...text.split('\n').map(displayWidth));
/** A screen's text with folded lines joined again, to look for a sentence wherever the fold fell. */
const unfolded = (text: string) => text.replace(/\n {4,}/g, ' ');

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('slotctl status fits the terminal', () => {
  for (const [names, label] of [[undefined, 'machines m1…m6'], [HOST_NAMES, 'host-like machine names']] as const) {
    for (const width of [80, 100]) {
      it(`has no line wider than ${width} columns (${label})`, () => {
        const screen = statusScreen(sampleStatus(names), TARGET, width);
        expect(widest(screen)).toBeLessThanOrEqual(width);
        // and it was too wide before: the fitting is what made it fit
        expect(widest(statusScreen(sampleStatus(names), TARGET))).toBeGreaterThan(width);
      });
    }
  }

  it('keeps at 80 columns the machines and their states, the stores, master and replica, and the backlogs', () => {
    const status = sampleStatus();
    const screen = statusScreen(status, TARGET, 80);
    expect(screen.split('\n')[0]).toBe('cluster NOT HEALTHY — machines 5/6 up, stores 8/12 ok');
    expect(screen).toContain('(coordinator 10.20.0.5:7400, leader at term 7, state in etcd /slotctl/)');
    for (const m of status.machines) expect(screen).toMatch(new RegExp(`│ ${m.name} +│ ${m.state}${m.drained ? ' \\(drained\\)' : ''} +│`));
    for (const s of status.stores) expect(screen).toMatch(new RegExp(`│ ${s.name} +│ ${s.health} +│ ${s.master!.machine} -> ${s.replica!.machine}( unknown)? +│`));
    expect(screen).toMatch(/│ s02 .*│ 3 files, 2 mbox, 4\.1s +│/);
    expect(screen).toMatch(/│ s05 .*│ 142 files, 37 mbox, 7m13s +│/);
    expect(screen).toMatch(/│ s09 .*│ m3 -> m4 unknown +│ STALLED 1208 files, 311 mbox, 2h14m │/);
    // every problem and operation whole, only folded
    for (const p of status.problems) expect(unfolded(screen)).toContain(`! ${p}`);
    for (const op of status.operations) expect(unfolded(screen)).toContain(`waiting: ${op.waiting}`);
    expectGolden(golden('80.txt'), `${screen}\n`);
  });

  it('drops the address and shortens the agent first (100 columns)', () => {
    const screen = statusScreen(sampleStatus(), TARGET, 100);
    expect(screen).toMatch(/│ machine │ state +│ since +│ agent │ last heartbeat │ slots │ masters │ fan-out │/);
    expect(screen).toMatch(/│ store │ health +│ epoch │ master -> replica │ backlog +│/);
    expectGolden(golden('100.txt'), `${screen}\n`);
  });

  it('prints everything as before with --wide, and to a pipe', () => {
    const tty80 = { isTTY: true, columns: 80 };
    const wide = statusScreen(sampleStatus(), TARGET, outputWidth({ wide: true }, { COLUMNS: '80' }, tty80));
    const piped = statusScreen(sampleStatus(), TARGET, outputWidth({}, {}, { isTTY: false }));
    expectGolden(golden('wide.txt'), `${wide}\n`);
    expect(piped).toBe(wide);
    for (const head of ['address', 'since', 'agent', 'last heartbeat', 'fan-out', 'epoch', 'service ip', 'master', 'replica', 'backlog']) expect(wide).toContain(`│ ${head} `);
    expectGolden(golden('wide-host-names.txt'), `${statusScreen(sampleStatus(HOST_NAMES), TARGET, Infinity)}\n`);
  });

  it('machine list and store list fit with the same tables', () => {
    const status = sampleStatus(HOST_NAMES);
    for (const width of [80, 100]) {
      expect(widest(machinesTable(status.machines, width))).toBeLessThanOrEqual(width);
      expect(widest(storesTable(status.stores, width))).toBeLessThanOrEqual(width);
    }
    // names are never cut, even where the backlog has to be
    const stores = storesTable(status.stores, 80);
    for (const s of status.stores) expect(stores).toContain(`│ ${s.name} `);
    for (const m of status.machines) expect(stores).toContain(m.name);
    expect(stores).toMatch(/│ STALLED 1208 files… +│/);
  });
});

describe('output width', () => {
  it('is the terminal’s on a TTY, COLUMNS when set, unlimited on a pipe or with --wide', () => {
    expect(outputWidth({}, {}, { isTTY: true, columns: 97 })).toBe(97);
    expect(outputWidth({}, {}, { isTTY: false })).toBe(Infinity);
    expect(outputWidth({}, { COLUMNS: '80' }, { isTTY: false })).toBe(80);
    expect(outputWidth({}, { COLUMNS: '120' }, { isTTY: true, columns: 97 })).toBe(120);
    expect(outputWidth({ wide: true }, { COLUMNS: '80' }, { isTTY: true, columns: 97 })).toBe(Infinity);
    // nonsense in COLUMNS is not a width
    for (const bad of ['', '0', '-3', 'wide', '80.5']) expect(outputWidth({}, { COLUMNS: bad }, { isTTY: true, columns: 97 })).toBe(97);
  });
});
