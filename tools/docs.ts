// Parts of docs/ARCHITECTURE.md drawn from the code, as pg_autoctl draws its FSM from its table: the rule tables from
// their arrays and the Admin RPC list from the proto, between markers
//   <!-- generated: NAME (npm run docs) -->  …  <!-- end: NAME -->
// `npm run docs` rewrites them; test/docs.test.ts fails when the file differs from what this would write.
//   node --import tsx tools/docs.ts [--check]
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LIVENESS_RULES } from '../packages/coordinator/src/liveness/rules.js';
import { ADMIN_ACCESS, describeAccess, type Access } from '../packages/coordinator/src/grpc/roles.js';
import { SLOT_ACTIONS, SLOT_TRANSITIONS } from '../packages/agent/src/slot/lifecycle.js';
import type { AnyKind } from '../packages/coordinator/src/operations/framework/kind.js';
import { DRAIN } from '../packages/coordinator/src/operations/kinds/drain.js';
import { FAILOVER } from '../packages/coordinator/src/operations/kinds/failover.js';
import { RECOVERY } from '../packages/coordinator/src/operations/kinds/recovery.js';
import { REREPLICATE } from '../packages/coordinator/src/operations/kinds/rereplicate.js';
import { MOVE_REPLICA } from '../packages/coordinator/src/operations/kinds/move-replica.js';
import { EVACUATE } from '../packages/coordinator/src/operations/kinds/relocate.js';
import { SWITCHOVER } from '../packages/coordinator/src/operations/kinds/switchover.js';
import type { CheckRule } from '../packages/coordinator/src/operations/framework/rule.js';
import { FAILOVER_WATCH_RULES } from '../packages/coordinator/src/operations/watch/failover.js';
import { RECOVERY_WATCH_RULES } from '../packages/coordinator/src/operations/watch/recovery.js';

const ROOT = new URL('../', import.meta.url);
const accessOf = (rpc: string) => {
  const access = (ADMIN_ACCESS as Record<string, Access>)[rpc];
  if (!access) throw new Error(`Admin RPC ${rpc} has no row in ADMIN_ACCESS (packages/coordinator/src/grpc/roles.ts)`);
  return describeAccess(access);
};
export const DOC = fileURLToPath(new URL('docs/ARCHITECTURE.md', ROOT));
const PROTO = fileURLToPath(new URL('proto/slotctl.proto', ROOT));

const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');
const table = (head: string[], rows: string[][]) => [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');

/** Each rpc of a service with the comment lines right above it. */
export function serviceRpcs(proto: string, service: string): { name: string; request: string; reply: string; doc: string }[] {
  const start = proto.indexOf(`service ${service} {`);
  if (start < 0) throw new Error(`proto: no service ${service}`);
  const body = proto.slice(start, proto.indexOf('\n}', start));
  const out: { name: string; request: string; reply: string; doc: string }[] = [];
  let comment: string[] = [];
  for (const line of body.split('\n').slice(1)) {
    const text = line.trim();
    if (text.startsWith('//')) comment.push(text.replace(/^\/\/\s?/, ''));
    else {
      const rpc = /^rpc (\w+)\((?:stream )?(\w+)\) returns \((?:stream )?(\w+)\);/.exec(text);
      if (rpc) out.push({ name: rpc[1]!, request: rpc[2]!, reply: rpc[3]!, doc: comment.join(' ') });
      comment = [];
    }
  }
  return out;
}

/** An operation kind's table: rows that differ only in the step they leave are one row (first match wins within a step). */
export function kindRules(kind: AnyKind): string[][] {
  const rows: { from: string[]; key: string; cells: string[] }[] = [];
  for (const r of kind.rules) {
    const state = typeof r.state === 'function' ? r.stateDoc ?? '?' : r.state;
    const to = state && state !== r.to ? `${r.to} (${state})` : r.to;
    const action = r.action === 'none' ? '—' : `${r.action}: ${kind.actionDocs[r.action] ?? '(no description)'}`;
    const key = [r.reason, to, r.doc, action].join('\u0000');
    const same = rows.find((x) => x.key === key);
    if (same) same.from.push(r.from);
    else rows.push({ from: [r.from], key, cells: [to, r.doc, action] });
  }
  return rows.map((x) => [x.from.join(', '), ...x.cells]);
}

const kindTable = (kind: AnyKind) => table(['from', 'to', 'when', 'action'], kindRules(kind));
/** A level-triggered check's table (the first row that holds names the action). */
const checkTable = (rules: readonly CheckRule<never, string>[]) => table(['rule', 'when', 'action'], rules.map((r) => [r.name, r.doc, r.action === 'none' ? '—' : r.action]));

export function sections(proto = readFileSync(PROTO, 'utf8')): Record<string, string> {
  return {
    'admin-rpcs': table(
      ['rpc', 'request → reply', 'role needed', 'what'],
      serviceRpcs(proto, 'Admin').map((r) => [`\`${r.name}\``, `${r.request} → ${r.reply}`, accessOf(r.name), r.doc || '(no comment in the proto)']),
    ),
    'liveness-rules': table(
      ['rule', 'from', 'to', 'when'],
      LIVENESS_RULES.map((r) => [r.name, r.from.join(', '), r.to, r.doc]),
    ),
    'switchover-rules': kindTable(SWITCHOVER),
    'drain-rules': kindTable(DRAIN),
    'failover-rules': kindTable(FAILOVER),
    'recovery-rules': kindTable(RECOVERY),
    'rereplicate-rules': kindTable(REREPLICATE),
    'move-replica-rules': kindTable(MOVE_REPLICA),
    'relocate-rules': kindTable(EVACUATE),
    'failover-watch': checkTable(FAILOVER_WATCH_RULES),
    'recovery-watch': checkTable(RECOVERY_WATCH_RULES),
    'slot-lifecycle': table(
      ['from', 'event', 'to', 'action'],
      SLOT_TRANSITIONS.map((t) => [t.from.join(', '), t.event, t.to, t.action === 'none' ? '—' : `${t.action}: ${SLOT_ACTIONS[t.action]}`]),
    ),
  };
}

const begin = (name: string) => `<!-- generated: ${name} (npm run docs) -->`;
const end = (name: string) => `<!-- end: ${name} -->`;

/** `doc` with every generated part replaced by what the code says now; a part the doc lacks is an error. */
export function render(doc: string, parts: Record<string, string> = sections()): string {
  let out = doc;
  for (const [name, body] of Object.entries(parts)) {
    const a = out.indexOf(begin(name));
    const b = out.indexOf(end(name));
    if (a < 0 || b < a) throw new Error(`docs/ARCHITECTURE.md has no "${begin(name)}" … "${end(name)}" part`);
    out = `${out.slice(0, a)}${begin(name)}\n${body}\n${out.slice(b)}`;
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const doc = readFileSync(DOC, 'utf8');
  const next = render(doc);
  if (process.argv.includes('--check')) {
    if (next !== doc) {
      console.error('docs/ARCHITECTURE.md is stale: run npm run docs');
      process.exit(1);
    }
  } else if (next !== doc) {
    writeFileSync(DOC, next);
    console.log('docs/ARCHITECTURE.md: generated parts rewritten');
  } else console.log('docs/ARCHITECTURE.md: up to date');
}
