// The fitting itself, on small tables: steps in their order and only until the table fits, a merge taken whole,
// names never cut, what later steps free given back to a cut column; and the display width, cut and fold it uses.
import { describe, expect, it } from 'vitest';
import { displayWidth, drawTable, fitTable, truncate, wrap, type TableSpec } from './table-fit.js';

interface Host {
  name: string;
  address: string;
  note: string;
  since: string;
}

const HOSTS: Host[] = [
  { name: 'mail-frankfurt-01', address: '10.0.0.1', note: 'kernel upgrade scheduled for the weekend', since: '3 days ago' },
  { name: 'mail-berlin-02', address: '10.0.0.2', note: '', since: '5 hours ago' },
];

const SPEC: TableSpec<Host> = {
  columns: [
    { head: 'name', cell: (h) => h.name },
    { head: 'address', cell: (h) => h.address },
    { head: 'since', cell: (h) => h.since, short: { cell: (h) => h.since.replace(/ days? ago| hours? ago/, (m) => m.trim()[0]!) } },
    { head: 'note', cell: (h) => h.note || '-' },
  ],
  fit: [{ shorten: 'since' }, { drop: 'address' }, { truncate: 'note', min: 10 }],
};

const widest = (text: string) => Math.max(...text.split('\n').map(displayWidth));
const header = (text: string) => text.split('\n')[1]!;

describe('fitTable', () => {
  it('prints the table as it is when it fits, and unlimited', () => {
    const full = drawTable(['name', 'address', 'since', 'note'], HOSTS.map((h) => [h.name, h.address, h.since, h.note || '-']));
    expect(fitTable(SPEC, HOSTS)).toBe(full);
    expect(fitTable(SPEC, HOSTS, widest(full))).toBe(full);
  });

  it('takes the steps in order, only as many as it needs', () => {
    const full = widest(fitTable(SPEC, HOSTS));
    const shortened = fitTable(SPEC, HOSTS, full - 1);
    expect(shortened).toContain('│ 3d ');
    expect(header(shortened)).toContain('address');
    const dropped = fitTable(SPEC, HOSTS, widest(shortened) - 1);
    expect(header(dropped)).not.toContain('address');
    expect(dropped).toContain('kernel upgrade scheduled for the weekend');
    const cut = fitTable(SPEC, HOSTS, 60);
    expect(widest(cut)).toBe(60);
    expect(cut).toMatch(/│ kernel upgrade.*… │/);
  });

  it('cuts a free-text column no further than its minimum, and never a name: too narrow stays too wide', () => {
    const narrow = fitTable(SPEC, HOSTS, 20);
    expect(narrow).toContain('│ mail-frankfurt-01 │');
    expect(narrow).toContain('│ kernel up… │');
    expect(widest(narrow)).toBeGreaterThan(20);
  });

  it('takes a merge whole: one column shortened to hold another, that one dropped, in one step', () => {
    const spec: TableSpec<Host> = {
      columns: [
        { head: 'name', cell: (h) => h.name },
        { head: 'address', cell: (h) => h.address, short: { head: 'address, since', cell: (h) => `${h.address}, ${h.since}` } },
        { head: 'since', cell: (h) => h.since },
      ],
      fit: [[{ shorten: 'address' }, { drop: 'since' }]],
    };
    const merged = fitTable(spec, HOSTS, widest(fitTable(spec, HOSTS)) - 1);
    expect(header(merged)).toBe('│ name              │ address, since        │');
    expect(merged).toContain('│ mail-berlin-02    │ 10.0.0.2, 5 hours ago │');
  });

  it('gives a cut column back what later steps free', () => {
    const spec: TableSpec<Host> = { columns: SPEC.columns, fit: [{ truncate: 'note', min: 10 }, { drop: 'address' }] };
    // the cut alone (note to 10) leaves it 9 too wide; dropping the address frees 11, 2 of which the note gets back
    const text = fitTable(spec, HOSTS, widest(fitTable(spec, HOSTS)) - 39);
    expect(header(text)).not.toContain('address');
    expect(text).toContain('│ kernel upgr… │');
  });

  it('refuses a step that names no column (a typo would silently keep a table wide)', () => {
    expect(() => fitTable({ columns: SPEC.columns, fit: [{ drop: 'adress' }] }, HOSTS, 10)).toThrow(/names no column "adress"/);
  });
});

describe('display width, cut and fold', () => {
  it('counts terminal cells: box drawing and … one, wide characters two, accents and colours none', () => {
    expect(displayWidth('│ m1 │')).toBe(6);
    expect(displayWidth('…')).toBe(1);
    expect(displayWidth('メール')).toBe(6);
    expect(displayWidth('e\u0301')).toBe(1);
    expect(displayWidth('\x1b[31mred\x1b[0m')).toBe(3);
  });

  it('cuts to a width with …, wide characters included, and leaves what fits alone', () => {
    expect(truncate('replication stalled', 19)).toBe('replication stalled');
    expect(truncate('replication stalled', 12)).toBe('replication…');
    expect(truncate('メールボックス', 7)).toBe('メール…');
    expect(displayWidth(truncate('メールボックス', 6))).toBeLessThanOrEqual(6);
  });

  it('folds free text at spaces under a hanging indent, and cuts a word longer than a line', () => {
    expect(wrap('  ! short', 80, 4)).toEqual(['  ! short']);
    expect(wrap('  ! store s09: replication stalled since ten minutes', 30, 4)).toEqual(['  ! store s09: replication', '    stalled since ten minutes']);
    const folded = wrap(`  ! partition ${'x'.repeat(50)} full`, 30, 4);
    expect(folded.every((l) => displayWidth(l) <= 30)).toBe(true);
    expect(folded.join('').replace(/ /g, '')).toBe(`!partition${'x'.repeat(50)}full`);
  });
});
