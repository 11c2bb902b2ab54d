// The cluster description file (YAML or JSON): its schema, and parsing that keeps line numbers so that every
// problem can name the line of the offending entry. Shared because three packages read the file: the coordinator
// applies it, the planner turns it into a cluster to plan, slotctl reads it for an offline layout. Imported as
// `@slotctl/shared/cluster-spec`, never from the index: the agent should not load yaml and zod (see validate.ts).
import { LineCounter, parseDocument, isNode, stringify, type Document } from 'yaml';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { parseSize } from './size.js';
import { ipProblem, nameProblem, pathProblem } from './validate.js';
import { poolEntryProblem } from './address-pool.js';

function refineWith(check: (value: string) => string | undefined) {
  return (value: string, ctx: z.RefinementCtx) => {
    const problem = check(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  };
}

const nameSchema = z.string().superRefine(refineWith(nameProblem));
const ipSchema = z.string().superRefine(refineWith(ipProblem));
const pathSchema = z.string().superRefine(refineWith(pathProblem));

function sizeProblem(value: string | number): string | undefined {
  try {
    parseSize(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** A size such as 4TB, 500GB or a number of bytes. */
const sizeSchema = z.union([z.string(), z.number()]).superRefine((v, ctx) => {
  const problem = sizeProblem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
}).transform((v) => parseSize(v));

const diskSchema = z.strictObject({
  name: nameSchema,
  path: pathSchema,
  class: z.enum(['ssd', 'hdd', 'nvme']).default('hdd'),
  /** e.g. 4TB: the planner fits slots' partitions on it (300 GB data, 30 GB meta each by default). */
  size: sizeSchema.optional(),
});

const machineSchema = z.strictObject({
  name: nameSchema,
  address: ipSchema,
  /** How many slots the machine may run (the planner's capacity). */
  slots: z.number().int().min(1).max(64).default(18),
  /** Racks (or zones) keep a store's two slots apart. */
  rack: z.string().superRefine(refineWith(nameProblem)).optional(),
  disks: z.array(diskSchema).default([]),
  /** Addresses new slots on this machine may take (a replica moved to it): single addresses or IPv4 ranges FIRST-LAST. */
  slot_ips: z.array(z.string().superRefine(refineWith((v) => poolEntryProblem(v) || undefined))).default([]),
});

const slotSchema = z.strictObject({
  /** Defaults to STORE-MACHINE. */
  name: nameSchema.optional(),
  machine: nameSchema,
  ip: ipSchema,
  data_path: pathSchema,
  meta_path: pathSchema,
});

const storeSchema = z.strictObject({
  name: nameSchema,
  service_ip: ipSchema,
  /** The machine whose slot is master. */
  master: nameSchema,
  slots: z.array(slotSchema).length(2, 'a store has exactly two slots (one master, one replica)'),
  /** How much more its slots are expected to hold (e.g. 50GB): a replica move reserves it on the target's disks. */
  expected_growth: sizeSchema.optional(),
});

const cyrusDuration = z.string().regex(/^\d{1,6}[dhms]?$/, 'a Cyrus duration such as 7d, 12h or 0');
const clock = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** The `cleanup:` section: the cluster's cleanup policy (the coordinator's cleanup/config.ts turns it into settings). */
export const cleanupSchema = z.strictObject({
  /** Expunged messages are kept this long (cyr_expire -X). */
  expunged: cyrusDuration.default('7d'),
  /** Deleted folders are kept this long (-D). */
  deleted: cyrusDuration.default('7d'),
  /** Duplicate-delivery records are kept this long (-E). */
  duplicates: cyrusDuration.default('3d'),
  /** When scheduled cleanups start, UTC, HH:MM-HH:MM (may wrap midnight); each slot at its own jittered minute. */
  window: z.string().refine((w) => w.split('-').length === 2 && w.split('-').every((t) => clock.test(t)), 'a window such as 02:00-05:00 (UTC)').default('02:00-05:00'),
  /** Cleanups at once per machine (slots sharing a disk never run together whatever this says). */
  parallel: z.number().int().min(1).max(16).default(1),
  /** A cyr_expire running longer is killed and reported. */
  timeout: z.string().refine((v) => { try { parseDuration(v); return true; } catch { return false; } }, 'a duration such as 2h').default('2h'),
  /** Partition use (bytes or inodes), in percent, that raises a warning / a critical event. */
  warn: z.number().min(1).max(100).default(80),
  critical: z.number().min(1).max(100).default(90),
});

export type CleanupSpec = z.infer<typeof cleanupSchema>;

/** The `events:` section: how long the coordinator keeps its event log (older events are deleted, hourly). */
export const eventsSchema = z.strictObject({
  keep: z
    .string()
    .refine((v) => { try { return parseDuration(v) >= 86_400_000; } catch { return false; } }, 'a duration of at least a day, such as 90d')
    .default('90d'),
});

export type EventsSpec = z.infer<typeof eventsSchema>;

export const clusterSchema = z.strictObject({
  machines: z.array(machineSchema).default([]),
  stores: z.array(storeSchema).default([]),
  /** Per-slot cleanup policy (cyr_expire retentions, window, parallelism, timeout, disk thresholds). */
  cleanup: cleanupSchema.optional(),
  /** Event retention (default: 90 days). */
  events: eventsSchema.optional(),
});

export type ClusterSpec = z.infer<typeof clusterSchema>;
export type MachineSpec = ClusterSpec['machines'][number];
export type StoreSpec = ClusterSpec['stores'][number];
export type SlotSpec = StoreSpec['slots'][number];

export type ProblemCode =
  | 'SyntaxError'
  | 'SchemaError'
  | 'InvalidName'
  | 'InvalidAddress'
  | 'InvalidPath'
  | 'DuplicateName'
  | 'DuplicateAddress'
  | 'SharedPartition'
  | 'SameMachine'
  | 'UnknownMachine'
  | 'UnknownMaster'
  | 'SlotMoved'
  | 'StoreBusy'
  | 'MachineDrained'
  | 'MachineInUse';

export interface Problem {
  code: ProblemCode;
  /** e.g. stores[2].slots[0].machine */
  path: string;
  /** 1-based; 0 when the problem is not tied to a place in the file. */
  line: number;
  /** The name of the offending entry, when it has one. */
  entry: string;
  message: string;
}

export type PathKey = string | number;

export function formatPath(path: readonly PathKey[]): string {
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : i === 0 ? key : `.${key}`)).join('');
}

export function slotName(store: StoreSpec, slot: SlotSpec): string {
  return slot.name ?? `${store.name}-${slot.machine}`;
}

/** Finds the line of the deepest node on `path` that the document has. */
function lineOf(doc: Document, counter: LineCounter, path: readonly PathKey[]): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return counter.linePos(node.range[0]).line;
  }
  return 0;
}

/** The `name` of the entry that `path` points into, e.g. the store for stores[2].slots[0].machine. */
function entryOf(raw: unknown, path: readonly PathKey[]): string {
  let node: unknown = raw;
  let name = '';
  for (const key of path) {
    if (node === null || typeof node !== 'object') break;
    node = (node as Record<PathKey, unknown>)[key];
    const candidate = node && typeof node === 'object' ? (node as { name?: unknown }).name : undefined;
    if (typeof candidate === 'string') name = name ? `${name}/${candidate}` : candidate;
  }
  return name;
}

function codeForField(path: readonly PathKey[]): ProblemCode {
  const field = String(path[path.length - 1] ?? '');
  if (field === 'name' || field === 'machine' || field === 'master') return 'InvalidName';
  if (field === 'address' || field.endsWith('ip') || path.includes('slot_ips')) return 'InvalidAddress';
  if (field.endsWith('path')) return 'InvalidPath';
  return 'SchemaError';
}

export interface ParsedCluster {
  spec?: ClusterSpec;
  problems: Problem[];
  /** Resolves a path in the file to its line, for the semantic checks that come after the schema. */
  locate(path: readonly PathKey[]): { line: number; entry: string };
}

/** Reads JSON directly (fast for generated files of thousands of stores); anything else as YAML. */
function readFast(text: string): { raw: unknown } | undefined {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return { raw: JSON.parse(text) as unknown };
  } catch {
    return undefined; // let the YAML parser report where it breaks
  }
}

export function parseCluster(text: string): ParsedCluster {
  // The document with positions is built only when needed: for YAML always, for JSON only to locate a problem.
  let located: { doc: Document; counter: LineCounter } | undefined;
  const document = () => {
    if (!located) {
      const counter = new LineCounter();
      located = { doc: parseDocument(text, { lineCounter: counter, prettyErrors: true, uniqueKeys: true }), counter };
    }
    return located;
  };
  const fast = readFast(text);
  const doc = fast ? undefined : document().doc;
  if (doc?.errors.length) {
    return {
      locate: () => ({ line: 0, entry: '' }),
      problems: doc.errors.map((error) => ({
        code: 'SyntaxError',
        path: '',
        line: error.linePos?.[0]?.line ?? 0,
        entry: '',
        message: error.message.split('\n')[0] ?? error.message,
      })),
    };
  }
  const raw: unknown = fast ? fast.raw : doc!.toJS();
  const locate = (path: readonly PathKey[]) => {
    const { doc: d, counter } = document();
    return { line: lineOf(d, counter, path), entry: entryOf(raw, path) };
  };
  if (raw === null || raw === undefined || typeof raw !== 'object' || Array.isArray(raw)) {
    return {
      locate,
      problems: [{ code: 'SchemaError', path: '', line: 1, entry: '', message: 'the file must hold a mapping with "machines" and "stores"' }],
    };
  }
  const result = clusterSchema.safeParse(raw);
  if (!result.success) {
    return {
      locate,
      problems: result.error.issues.map((issue) => {
        const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
        // An unknown key is located at the key itself, not at the entry that holds it.
        const at = issue.code === 'unrecognized_keys' && issue.keys[0] ? [...path, issue.keys[0]] : path;
        return { code: codeForField(path), path: formatPath(at), ...locate(at), message: issue.message };
      }),
    };
  }
  return { spec: result.data, problems: [], locate };
}

/** A cluster file as YAML, with a comment on top (`slotctl cluster export`); `parseCluster` reads it back unchanged. */
export function formatCluster(spec: z.input<typeof clusterSchema>, comment: string): string {
  const body = stringify(spec, { lineWidth: 0, flowCollectionPadding: true });
  return `${comment.split('\n').map((l) => `# ${l}`.trimEnd()).join('\n')}\n${body}`;
}
