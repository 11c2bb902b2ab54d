// Tables that fit the terminal. A table is a list of columns and an ordered list of steps that make it narrower
// (use a column's short form, drop a column, cut a free-text column with '…'); the steps are taken one by one, in
// their order, only until the table fits, so what a narrow terminal loses first is written down in one place per
// table and is the same on every run. Names (machines, stores, slots) are never in a step: they stay whole.
import Table from 'cli-table3';

/** The box style of every slotctl table: no lines between rows. */
const CHARS = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/** Draws a table as it is, however wide. */
export function drawTable(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const t = new Table({ head: [...head], style: { head: [], border: [] }, chars: CHARS });
  t.push(...rows.map((row) => row.map(String)));
  return t.toString();
}

/** A box table's width: each column is its widest text plus a space each side and one border, plus the last border. */
function drawnWidth(columnWidths: readonly number[]): number {
  return columnWidths.reduce((sum, w) => sum + w + 3, 1);
}

// ---- display width: what a terminal shows, not what .length counts ----

// colour codes take no cells
const ANSI_ESCAPE = /\x1b\[[0-9;]*[A-Za-z]/g;
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\u2060\ufe0f]$/u;

/** East Asian wide and fullwidth characters and emoji take two cells (the ranges string-width uses, in short). */
function isWide(codePoint: number): boolean {
  return (
    (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0xa4cf && codePoint !== 0x303f) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x1f300 && codePoint <= 0x1faff) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
  );
}

function charWidth(char: string): number {
  if (ZERO_WIDTH.test(char)) return 0;
  return isWide(char.codePointAt(0)!) ? 2 : 1;
}

/** How many terminal cells a line takes. */
export function displayWidth(text: string): number {
  let width = 0;
  for (const char of text.replace(ANSI_ESCAPE, '')) width += charWidth(char);
  return width;
}

/** The text cut to at most `width` cells, its end replaced by '…' when anything was cut. */
export function truncate(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  let out = '';
  let used = 0;
  for (const char of text) {
    const w = charWidth(char);
    if (used + w > width - 1) break;
    out += char;
    used += w;
  }
  // "stopped by operator,…" reads worse than "stopped by operator…"
  return `${out.replace(/[\s,;:]+$/, '')}…`;
}

/**
 * A line of free text (a problem, a headline) folded at spaces to `width` cells; the lines after the first start
 * with `indent` spaces. A line that fits is returned as it is; a word longer than a whole line is cut into pieces.
 */
export function wrap(line: string, width: number, indent: number): string[] {
  if (displayWidth(line) <= width) return [line];
  const lead = /^ */.exec(line)![0];
  const words = line.slice(lead.length).split(/ +/);
  const out: string[] = [];
  let current = lead;
  let currentHasWord = false;
  for (let word of words) {
    for (;;) {
      const candidate = currentHasWord ? `${current} ${word}` : current + word;
      if (displayWidth(candidate) <= width) {
        current = candidate;
        currentHasWord = true;
        break;
      }
      if (currentHasWord) {
        out.push(current);
        current = ' '.repeat(indent);
        currentHasWord = false;
        continue;
      }
      // a word wider than a whole line: as much of it as fits here, the rest on the next line
      const room = Math.max(1, width - displayWidth(current));
      const [head, rest] = splitAtWidth(word, room);
      out.push(current + head);
      current = ' '.repeat(indent);
      word = rest;
      if (!word) break;
    }
  }
  if (currentHasWord) out.push(current);
  return out;
}

function splitAtWidth(text: string, width: number): [string, string] {
  let used = 0;
  let i = 0;
  for (const char of text) {
    if (used + charWidth(char) > width && i > 0) break;
    used += charWidth(char);
    i += char.length;
  }
  return [text.slice(0, i), text.slice(i)];
}

// ---- how wide the output may be ----

/** The option every command printing a table takes, and the sentence --help shows for it. */
export const WIDE_HELP = 'every column in full, however wide the lines get (default: fit the terminal, see slotctl --help)';
export const WIDTH_HELP = [
  "Tables fit the terminal's width: less important columns are shortened or left out,",
  'in a fixed order, and long text is cut with …; --wide shows everything. COLUMNS=N',
  'fits them to N columns. Output to a pipe or a file has every column (as with',
  '--wide) unless COLUMNS is set.',
].join('\n');

/**
 * How many columns text output may take: unlimited with --wide; COLUMNS when it is set (watch(1) sets it for the
 * command it runs, and it lets a pipe ask for a width); the terminal's width when stdout is one; unlimited otherwise,
 * so that a pipe or a file gets every column.
 */
export function outputWidth(opts: { wide?: boolean }, env: NodeJS.ProcessEnv = process.env, stdout: { isTTY?: boolean; columns?: number } = process.stdout): number {
  if (opts.wide) return Infinity;
  const columns = Number(env.COLUMNS);
  if (env.COLUMNS && Number.isInteger(columns) && columns > 0) return columns;
  return stdout.isTTY && stdout.columns ? stdout.columns : Infinity;
}

// ---- fitted tables ----

export interface Column<Row> {
  /** The header, and the name a fitting step gives the column by. */
  head: string;
  cell: (row: Row) => string | number;
  /** A narrower header or cell (an abbreviation, a merge of two columns), used once a step shortens the column. */
  short?: { head?: string; cell?: (row: Row) => string | number };
}

export type FitAction = { shorten: string } | { drop: string } | { truncate: string; min: number };
/** A step is taken whole: one action, or several at once (a merge shortens one column and drops the other). */
export type FitStep = FitAction | readonly FitAction[];

export interface TableSpec<Row> {
  columns: readonly Column<Row>[];
  /** What gives way when the table is too wide, in order. */
  fit: readonly FitStep[];
}

interface Layout {
  shortened: Set<string>;
  dropped: Set<string>;
  /** Free-text columns cut to this many cells. */
  cuts: Map<string, number>;
}

interface Drawn {
  keys: string[];
  head: string[];
  rows: string[][];
  /** Each column's widest text, before any cut. */
  natural: number[];
}

function draft<Row>(spec: TableSpec<Row>, rows: readonly Row[], layout: Layout): Drawn {
  const columns = spec.columns.filter((c) => !layout.dropped.has(c.head));
  const short = (c: Column<Row>) => (layout.shortened.has(c.head) ? c.short : undefined);
  const head = columns.map((c) => short(c)?.head ?? c.head);
  const cells = rows.map((row) => columns.map((c) => String((short(c)?.cell ?? c.cell)(row))));
  const natural = columns.map((_, i) => Math.max(displayWidth(head[i]!), ...cells.map((r) => displayWidth(r[i]!))));
  return { keys: columns.map((c) => c.head), head, rows: cells, natural };
}

/** Column widths once the cuts apply (a cut never goes below the header). */
function widths(d: Drawn, layout: Layout): number[] {
  return d.natural.map((w, i) => {
    const cut = layout.cuts.get(d.keys[i]!);
    return cut === undefined ? w : Math.min(w, Math.max(cut, displayWidth(d.head[i]!)));
  });
}

function apply<Row>(action: FitAction, spec: TableSpec<Row>, rows: readonly Row[], layout: Layout, width: number): void {
  const key = 'shorten' in action ? action.shorten : 'drop' in action ? action.drop : action.truncate;
  if (!spec.columns.some((c) => c.head === key)) throw new Error(`table fitting names no column "${key}"`);
  if ('shorten' in action) layout.shortened.add(key);
  else if ('drop' in action) layout.dropped.add(key);
  else {
    const d = draft(spec, rows, layout);
    const i = d.keys.indexOf(key);
    if (i < 0) return;
    const current = widths(d, layout);
    const excess = drawnWidth(current) - width;
    layout.cuts.set(key, Math.max(action.min, current[i]! - excess));
  }
}

/**
 * The table at most `width` cells wide, taking the spec's steps in order until it fits (Infinity: as it is). When
 * every step is taken and it is still too wide it is printed anyway: names are never cut.
 */
export function fitTable<Row>(spec: TableSpec<Row>, rows: readonly Row[], width = Infinity): string {
  const layout: Layout = { shortened: new Set(), dropped: new Set(), cuts: new Map() };
  for (const step of spec.fit) {
    const d = draft(spec, rows, layout);
    if (drawnWidth(widths(d, layout)) <= width) break;
    for (const action of Array.isArray(step) ? step : [step as FitAction]) apply(action, spec, rows, layout, width);
  }
  const d = draft(spec, rows, layout);
  let room = width - drawnWidth(widths(d, layout));
  // a column cut early gets back what later steps freed, in the order the cuts were made
  for (const key of layout.cuts.keys()) {
    const i = d.keys.indexOf(key);
    if (i < 0 || room <= 0) continue;
    const before = widths(d, layout)[i]!;
    const grown = Math.min(d.natural[i]!, before + room);
    layout.cuts.set(key, grown);
    room -= grown - before;
  }
  const final = widths(d, layout);
  return drawTable(d.head, d.rows.map((r) => r.map((cell, i) => truncate(cell, final[i]!))));
}
