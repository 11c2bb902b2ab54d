// Prometheus' text exposition format (version 0.0.4) read back as data for tests: a scanner over the format's
// grammar — comments, names, label sets with escapes, values — not a regular expression over whole lines. The npm
// parser tried first drops the labels, sums and counts of labelled histograms. Errors name the line.
// Validity against Prometheus' own parser is `promtool check metrics` (test/metrics-exposition).

export interface Sample {
  /** The sample's own name (a histogram's `_bucket`, `_sum`, `_count` kept as such). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: string;
  samples: Sample[];
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const SUFFIXES = ['_bucket', '_sum', '_count'];

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  if (text === '' || Number.isNaN(n)) throw new Error(`${where}: "${text}" is not a sample value`);
  return n;
}

/** One sample line: name, optional {labels}, value, optional timestamp. */
function parseSample(line: string, where: string): Sample {
  NAME.lastIndex = 0;
  const m = NAME.exec(line);
  if (!m) throw new Error(`${where}: no metric name`);
  let i = m[0].length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    for (;;) {
      while (line[i] === ' ') i++;
      if (line[i] === '}') {
        i++;
        break;
      }
      NAME.lastIndex = i;
      const l = NAME.exec(line);
      if (!l) throw new Error(`${where}: a label name expected at column ${i + 1}`);
      i += l[0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') throw new Error(`${where}: ="…" expected after label ${l[0]}`);
      i += 2;
      let v = '';
      for (;;) {
        const c = line[i];
        if (c === undefined) throw new Error(`${where}: unterminated value of label ${l[0]}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          v += e === 'n' ? '\n' : e === '\\' ? '\\' : e === '"' ? '"' : `\\${e ?? ''}`;
          i += 2;
          continue;
        }
        v += c;
        i++;
      }
      i++;
      if (l[0] in labels) throw new Error(`${where}: label ${l[0]} twice`);
      labels[l[0]] = v;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') throw new Error(`${where}: , or } expected after label ${l[0]}`);
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length < 1 || rest.length > 2) throw new Error(`${where}: a value (and optionally a timestamp) expected`);
  return { name: m[0], labels, value: parseValue(rest[0]!, where) };
}

export function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, help: '', type: 'untyped', samples: [] }));
    return f;
  };
  text.split('\n').forEach((line, n) => {
    const where = `line ${n + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
      if (!meta) return; // any other comment
      if (meta[1] === 'HELP') family(meta[2]!).help = meta[3]!.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      else family(meta[2]!).type = meta[3]!;
      return;
    }
    const s = parseSample(line, where);
    const base = SUFFIXES.find((x) => s.name.endsWith(x) && families.has(s.name.slice(0, -x.length)));
    family(base ? s.name.slice(0, -base.length) : s.name).samples.push(s);
  });
  return families;
}

/** The samples of family `name` (or of its `_bucket`/`_sum`/`_count` with `part`) whose labels include `labels`. */
export function samples(families: Map<string, Family>, name: string, labels: Record<string, string> = {}, part = ''): Sample[] {
  return (families.get(name)?.samples ?? []).filter((s) => s.name === name + part && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` (+ `part`) with `labels`; undefined when none; throws when several match. */
export function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}, part = ''): number | undefined {
  const found = samples(families, name, labels, part);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name}${part} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
