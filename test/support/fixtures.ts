import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** A fresh directory under the system temp dir; remove it with `rmSync(dir, { recursive: true })` in afterAll. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `slotctl-${prefix}-`));
  chmodSync(dir, 0o755); // Cyrus runs as user cyrus and must reach the slots below
  return dir;
}

/** Removes a test's directory; KEEP_TEST_DIRS=1 keeps it (logs, databases, slot files) for a post-mortem. */
export function removeDir(dir: string): void {
  if (process.env.KEEP_TEST_DIRS === '1') {
    console.log(`kept ${dir}`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Every row of every table, read through a second connection (the coordinator keeps its own open). */
export function dumpDatabase(path: string): Record<string, unknown[]> {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    // a WITHOUT ROWID table (slot_reports) has no rowid to order by: its primary key orders it
    const order = (name: string) =>
      (db.prepare('SELECT wr FROM pragma_table_list(?)').get(name) as { wr: number }).wr
        ? (db.prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk').all(name) as { name: string }[]).map((c) => `"${c.name}"`).join(', ')
        : 'rowid';
    return Object.fromEntries(tables.map(({ name }) => [name, db.prepare(`SELECT * FROM "${name}" ORDER BY ${order(name)}`).all()]));
  } finally {
    db.close();
  }
}

export const TWO_MACHINES = `machines:
  - name: m1
    address: 127.0.10.1
  - name: m2
    address: 127.0.10.2
stores:
  - name: s01
    service_ip: 127.0.20.1
    master: m1
    slots:
      - { machine: m1, ip: 127.0.21.1, data_path: /srv/m1/s01/data, meta_path: /srv/m1/s01/meta }
      - { machine: m2, ip: 127.0.22.1, data_path: /srv/m2/s01/data, meta_path: /srv/m2/s01/meta }
  - name: s02
    service_ip: 127.0.20.2
    master: m2
    slots:
      - { machine: m1, ip: 127.0.21.2, data_path: /srv/m1/s02/data, meta_path: /srv/m1/s02/meta }
      - { machine: m2, ip: 127.0.22.2, data_path: /srv/m2/s02/data, meta_path: /srv/m2/s02/meta }
`;

/** The JSON lines of a pino log file (lines that are not JSON are skipped). */
export function readLogLines(path: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line cut short by a kill -9
    }
  }
  return out;
}

/**
 * The last `n` lines of a daemon's pino log, one short line each (time, level, slot, message, error), for a failure
 * message that must say what the daemon did last. Unreadable: says so.
 */
export function logTail(path: string, n: number): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return ['(no log)'];
  }
  // A daemon's stderr shares the file: a crash's stack trace or a `cannot start` line is not JSON and is kept as is.
  return text.trimEnd().split('\n').slice(-n).map((line) => {
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return line;
    }
    const { time, level, msg, slot, err, error } = entry;
    const why = (err as { message?: string } | undefined)?.message ?? (typeof err === 'string' ? err : error);
    return `${String(time).slice(11, 23)} ${String(level)} ${slot ? `${String(slot)} ` : ''}${String(msg)}${why ? ` (${String(why)})` : ''}`;
  });
}

/**
 * Two machines and two stores (PREFIX01 mastered on m1, PREFIX02 on m2) whose slots live under ROOT and listen on
 * 127.NET.x.y, so that test files running side by side never share an address, a path or a slot name.
 */
export function twoMachineCluster(root: string, net: number, prefix: string): string {
  const slot = (store: string, m: string, host: number) =>
    `      - { machine: ${m}, ip: 127.${net}.${m === 'm1' ? 1 : 2}.${host}, data_path: ${root}/srv/${m}/${store}/data, meta_path: ${root}/srv/${m}/${store}/meta }`;
  return [
    'machines:',
    '  - { name: m1, address: 127.' + net + '.0.1 }',
    '  - { name: m2, address: 127.' + net + '.0.2 }',
    'stores:',
    `  - name: ${prefix}01`,
    `    service_ip: 127.${net}.3.1`,
    '    master: m1',
    '    slots:',
    slot(`${prefix}01`, 'm1', 1),
    slot(`${prefix}01`, 'm2', 1),
    `  - name: ${prefix}02`,
    `    service_ip: 127.${net}.3.2`,
    '    master: m2',
    '    slots:',
    slot(`${prefix}02`, 'm1', 2),
    slot(`${prefix}02`, 'm2', 2),
    '',
  ].join('\n');
}

/** Command lines of every running process (from /proc; no `ps` needed). */
export function processCommandLines(): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      out.push(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim());
    } catch {
      // gone meanwhile
    }
  }
  return out.filter(Boolean);
}
