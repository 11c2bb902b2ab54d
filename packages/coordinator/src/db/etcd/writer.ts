// The leader's changes, into etcd, in order, each only while this coordinator still leads: every etcd transaction
// compares the leader key's create revision with this leader's term, so a deposed leader's write changes nothing.
//
// A change fits one transaction when it is small (etcd's defaults: 128 operations, 1.5 MiB per request). A larger one
// (a cluster apply, an event purge) is written as a journal first: its parts, then `journal/ready` naming them — the
// point at which it is committed — then its rows in transactions of their own, then the journal deleted. A new
// leader that finds `journal/ready` applies it again before it reads the rows (the rows are whole values: applying
// twice is applying once), and the next change is never sent before the journal is gone.
//
// A transaction that fails for the network is tried again until the leadership's own deadline; after that, or when
// the comparison fails, every change waiting fails with LeadershipLost and nothing is written any more.
//
// Transactions are also ordered: each compares the mod revision of PREFIX/meta/writer with the one the previous
// transaction left (read once at the start of the term) and writes {term, seq} there. A try that timed out may still
// reach etcd later — held by a member that was hung or cut off, then proposed when it answers again (etcd counts the
// call's timeout from when it reads the request) — after its retry and the changes that followed were written; the
// leader key alone would let it through, and a row would go back to an older value. It now changes nothing. A retry
// whose first try was applied (the answer lost) finds its own {term, seq} there and counts as written.
import type { ICompare, IRequestOp, KVClient } from 'etcd3';
import type { Logger } from '@slotctl/shared';
import { prefixEnd, type EtcdKeys } from './keys.js';
import type { Op } from './mirror.js';

export class LeadershipLost extends Error {
  override readonly name = 'LeadershipLost';
}

export interface WriterOptions {
  kv: KVClient;
  keys: EtcdKeys;
  term: number;
  /** performance.now() until which this coordinator surely leads (its etcd lease, as last renewed). */
  leaderUntil: () => number;
  log: Logger;
  /** Per transaction, besides the writer's own put of PREFIX/meta/writer (etcd: --max-txn-ops 128 and --max-request-bytes 1.5 MiB by default). */
  maxOps?: number;
  maxBytes?: number;
  /** Per etcd call. */
  callTimeoutMs?: number;
}

const RETRY_MS = 100;
/** A value larger than this is stored in parts (etcd refuses a request over 1.5 MiB; a check of 100,000 mailboxes is more). */
export const PART_BYTES = 256 * 1024;

export class EtcdWriter {
  private tail: Promise<void> = Promise.resolve();
  private failure: LeadershipLost | undefined;
  private seq = 0;
  /** Transactions of this term so far (each one's number in PREFIX/meta/writer). */
  private txnSeq = 0;
  /** PREFIX/meta/writer's mod revision after the last transaction (undefined: not read yet this term). */
  private lastRev: number | undefined;
  private readonly maxOps: number;
  private readonly maxBytes: number;
  /** Transactions committed (a figure for the benchmark: etcd writes per second). */
  transactions = 0;
  private readonly onFailure: ((err: LeadershipLost) => void)[] = [];
  /** Row keys stored in parts (their parts are deleted when the row is written whole again or deleted). */
  readonly inParts = new Set<string>();

  constructor(private readonly o: WriterOptions) {
    this.maxOps = o.maxOps ?? 100;
    this.maxBytes = o.maxBytes ?? 1_000_000;
  }

  /** Queues a change (one atomic unit); resolves once etcd has it. An empty one resolves when those before it are written. */
  write(ops: readonly Op[]): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (ops.length) {
      const unit = [...ops];
      this.tail = this.tail.then(() => this.commit(unit));
      this.tail.catch((err: unknown) => this.fail(err));
    }
    return this.tail;
  }

  /** Resolves once every change queued so far is in etcd (rejects if one failed). */
  idle(): Promise<void> {
    return this.tail;
  }

  get failed(): LeadershipLost | undefined {
    return this.failure;
  }

  /** Called once, when the first change fails (leadership lost, or etcd unreachable past the leadership's deadline). */
  onFailed(fn: (err: LeadershipLost) => void): void {
    this.onFailure.push(fn);
  }

  private fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err instanceof LeadershipLost ? err : new LeadershipLost(`writing to etcd failed: ${(err as Error).message}`);
    for (const fn of this.onFailure) fn(this.failure);
  }

  private async commit(unit: Op[]): Promise<void> {
    if (this.failure) throw this.failure;
    const ops = this.largeInParts(unit);
    if (this.fits(ops)) return this.txn(ops.map(toRequest));
    const id = `${this.o.term}-${++this.seq}-${Date.now()}`;
    const parts = this.split(ops, Math.floor(this.maxBytes / 2), Number.MAX_SAFE_INTEGER);
    this.o.log.info({ ops: ops.length, parts: parts.length, journal: id }, 'a change too large for one etcd transaction goes through the journal');
    for (const [n, part] of parts.entries()) await this.txn([put(this.o.keys.journalPart(id, n), encodeOps(part))]);
    await this.txn([put(this.o.keys.journalReady, JSON.stringify({ id, parts: parts.length }))]);
    await applyInBatches(ops, (batch) => this.txn(batch.map(toRequest)), this.maxOps, this.maxBytes);
    await this.txn([{ request_delete_range: { key: Buffer.from(this.o.keys.journalReady) } }, deletePrefix(`${this.o.keys.journal}${id}/`)]);
  }

  /** Values over PART_BYTES become parts under PREFIX/parts/ and a stub naming how many; stale parts are deleted. */
  private largeInParts(ops: Op[]): Op[] {
    const out: Op[] = [];
    for (const op of ops) {
      if (this.inParts.delete(op.key)) out.push({ key: this.o.keys.partsOf(op.key), prefix: true });
      const value = op.value === undefined ? undefined : Buffer.from(op.value);
      if (!value || value.length <= PART_BYTES) {
        out.push(op);
        continue;
      }
      const n = Math.ceil(value.length / PART_BYTES);
      for (let i = 0; i < n; i++) out.push({ key: this.o.keys.part(op.key, i), value: value.subarray(i * PART_BYTES, (i + 1) * PART_BYTES) });
      out.push({ key: op.key, value: JSON.stringify({ [PARTS_FIELD]: n }) });
      this.inParts.add(op.key);
    }
    return out;
  }

  private fits(ops: readonly Op[]): boolean {
    return ops.length <= this.maxOps && bytesOf(ops) <= this.maxBytes;
  }

  private split(ops: readonly Op[], maxBytes: number, maxOps: number): Op[][] {
    return splitOps(ops, maxBytes, maxOps);
  }

  /**
   * One transaction conditioned on this leadership and on following the last one; network failures retried until the
   * leadership's deadline. One at a time: two at once would compare the same revision and one would end the
   * leadership (write() queues them; finishJournal runs before anything else is written).
   */
  async txn(success: IRequestOp[]): Promise<void> {
    const writerKey = Buffer.from(this.o.keys.writer);
    const leaderKey = Buffer.from(this.o.keys.leader);
    const mark = JSON.stringify({ term: this.o.term, seq: ++this.txnSeq });
    for (;;) {
      if (this.failure) throw this.failure;
      if (performance.now() > this.o.leaderUntil()) throw new LeadershipLost('the leadership lease ran out before etcd took the change (etcd unreachable)');
      try {
        this.lastRev ??= await this.writerRevision();
        const compare: ICompare[] = [
          { key: leaderKey, target: 'Create', result: 'Equal', create_revision: this.o.term },
          { key: writerKey, target: 'Mod', result: 'Equal', mod_revision: this.lastRev },
        ];
        const res = await this.o.kv.txn(
          { compare, success: [...success, put(this.o.keys.writer, mark)], failure: [{ request_range: { key: writerKey } }, { request_range: { key: leaderKey } }] },
          { deadline: Date.now() + (this.o.callTimeoutMs ?? 1000) },
        );
        if (res.succeeded) {
          this.lastRev = Number(res.header.revision);
          this.transactions++;
          return;
        }
        const [writerNow, leaderNow] = res.responses.map((r) => r.response_range?.kvs[0]);
        if (!leaderNow || Number(leaderNow.create_revision) !== this.o.term) throw new LeadershipLost(`no longer the leader: the leader key is not the one created at term ${this.o.term}`);
        if (writerNow?.value.toString() === mark) {
          // an earlier try of this very transaction was applied; its answer was lost
          this.lastRev = Number(writerNow.mod_revision);
          this.transactions++;
          return;
        }
        const found = writerNow ? `${JSON.stringify(writerNow.value.toString().slice(0, 200))} at mod revision ${writerNow.mod_revision}` : 'missing';
        throw new LeadershipLost(`etcd's ${this.o.keys.writer} is ${found}, where this leader (term ${this.o.term}) expected mod revision ${this.lastRev} (its last transaction, or the key as read at the start of the term): another writer under this prefix, or etcd's data went back (a restored snapshot)`);
      } catch (err) {
        if (err instanceof LeadershipLost) throw err;
        this.o.log.warn({ err: (err as Error).message }, 'etcd transaction failed; trying again');
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  /** PREFIX/meta/writer's mod revision now (0: none yet). */
  private async writerRevision(): Promise<number> {
    const res = await this.o.kv.range({ key: Buffer.from(this.o.keys.writer) }, { deadline: Date.now() + (this.o.callTimeoutMs ?? 1000) });
    return Number(res.kvs[0]?.mod_revision ?? 0);
  }
}

/** A journal part: ops as JSON, values in base64. */
export function encodeOps(ops: readonly Op[]): string {
  return JSON.stringify(ops.map((o) => ({ k: o.key, ...(o.value === undefined ? {} : { v: Buffer.from(o.value).toString('base64') }), ...(o.prefix ? { p: true } : {}) })));
}

export function decodeOps(text: string): Op[] {
  return (JSON.parse(text) as { k: string; v?: string; p?: boolean }[]).map((o) => ({ key: o.k, ...(o.v === undefined ? {} : { value: Buffer.from(o.v, 'base64') }), ...(o.p ? { prefix: true } : {}) }));
}

/** The stub of a value stored in parts: {"$parts": n} (no column name starts with $). */
export const PARTS_FIELD = '$parts';

function bytesOf(ops: readonly Op[]): number {
  let n = 0;
  for (const op of ops) n += Buffer.byteLength(op.key) + (op.value === undefined ? 0 : typeof op.value === 'string' ? Buffer.byteLength(op.value) : op.value.length) + 16;
  return n;
}

/** Ops in groups of at most `maxOps` and about `maxBytes` (a single larger op goes alone). */
export function splitOps(ops: readonly Op[], maxBytes: number, maxOps: number): Op[][] {
  const out: Op[][] = [];
  let current: Op[] = [];
  let bytes = 0;
  for (const op of ops) {
    const size = bytesOf([op]);
    if (current.length && (current.length >= maxOps || bytes + size > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(op);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

export async function applyInBatches(ops: readonly Op[], txn: (batch: Op[]) => Promise<void>, maxOps: number, maxBytes: number): Promise<void> {
  for (const batch of splitOps(ops, maxBytes, maxOps)) await txn(batch);
}

function put(key: string, value: string | Buffer): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: typeof value === 'string' ? Buffer.from(value) : value } };
}

export function toRequest(op: Op): IRequestOp {
  if (op.prefix) return deletePrefix(op.key);
  return op.value === undefined ? { request_delete_range: { key: Buffer.from(op.key) } } : put(op.key, op.value);
}

export function deletePrefix(prefix: string): IRequestOp {
  return { request_delete_range: { key: Buffer.from(prefix), range_end: prefixEnd(prefix) } };
}
