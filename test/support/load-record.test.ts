// The loss check can fail: deliveries left in flight, duplicates nobody explained, missing messages, mail stored
// that was never acknowledged, and a record too empty to prove anything. Also end to end: the real load generator
// against a fake LMTP server that cuts deliveries after their data or never answers.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../../tools/local-cluster.js';
import { type Behaviour, fakeLmtp } from './fake-lmtp.js';
import { removeDir, tempDir } from './fixtures.js';
import { type FoundLoad, type LoadMessage, type LoadRecord, loadIdOf, loadProblems, parseLoadRecord } from './load-record.js';

const msg = (seq: number, extra: Partial<LoadMessage> = {}): LoadMessage => ({ id: `L-${seq}`, store: seq % 2 ? 's2' : 's1', user: 'ann', attempts: 1, cutAfterData: 0, ...extra });
const summary = (acks: LoadMessage[], inFlight: LoadMessage[] = []) => ({ prefix: 'L', sent: acks.length + inFlight.length, acked: acks.length, retries: 0, rejected: 0, longestMs: 1, inFlight: inFlight.length, inFlightMessages: inFlight });
const record = (acks: LoadMessage[], inFlight: LoadMessage[] = []): LoadRecord => ({ acks, rejected: [], summary: summary(acks, inFlight) });
/** What the masters hold: each acknowledged message once, plus `extra` copies. */
const found = (acks: LoadMessage[], extra: string[] = []): FoundLoad => {
  const out: FoundLoad = {};
  for (const a of acks) ((out[a.store] ??= {})[a.user] ??= []).push(a.id);
  for (const id of extra) ((out[Number(id.split('-')[1]) % 2 ? 's2' : 's1'] ??= {}).ann ??= []).push(id);
  return out;
};
const acks = [msg(0), msg(1), msg(2), msg(3)];

describe('the loss check', () => {
  it('passes a complete load stored once', () => {
    expect(loadProblems(record(acks), found(acks), ['s1', 's2'])).toEqual({ problems: [], explained: [] });
  });

  it('fails deliveries still in flight at the end, and a load that was never stopped', () => {
    expect(loadProblems(record(acks, [msg(4)]), found(acks), ['s1', 's2']).problems).toEqual([expect.stringMatching(/^1 deliveries still in flight when the load stopped: L-4/)]);
    expect(loadProblems({ acks, rejected: [], summary: undefined }, found(acks), ['s1', 's2']).problems).toEqual([expect.stringMatching(/left no summary/)]);
  });

  it('fails a missing message, and mail stored that was never acknowledged', () => {
    expect(loadProblems(record(acks), found(acks.slice(1)), ['s1', 's2']).problems).toEqual([expect.stringMatching(/^acknowledged but missing on s1's master: L-0/)]);
    expect(loadProblems(record(acks), found(acks, ['L-9']), ['s1', 's2']).problems).toEqual(['stored on s2/ann but never acknowledged: L-9']);
  });

  it('fails a duplicate unless the test explains it and the message was cut off after its data as often', () => {
    expect(loadProblems(record(acks), found(acks, ['L-1']), ['s1', 's2']).problems).toEqual([expect.stringMatching(/^2 copies of L-1/)]);
    const why = 'the crash cut deliveries after their data';
    // explained, but the message was never cut off after its data: nothing explains the copy
    expect(loadProblems(record(acks), found(acks, ['L-1']), ['s1', 's2'], { duplicatesFromRetries: why }).problems).toEqual([expect.stringMatching(/^2 copies of L-1.*more than its cut-off attempts explain/)]);
    const cut = [msg(0), msg(1, { attempts: 2, cutAfterData: 1 }), msg(2), msg(3)];
    expect(loadProblems(record(cut), found(cut, ['L-1']), ['s1', 's2'], { duplicatesFromRetries: why })).toEqual({ problems: [], explained: [expect.stringMatching(/^2 copies of L-1.*: the crash cut/)] });
    expect(loadProblems(record(cut), found(cut, ['L-1', 'L-1']), ['s1', 's2'], { duplicatesFromRetries: why }).problems).toEqual([expect.stringMatching(/^3 copies of L-1/)]);
  });

  it('fails a record that proves nothing: no acknowledgement at all, or none for a store', () => {
    expect(loadProblems(record([]), {}, []).problems).toEqual(['no delivery was acknowledged: the check would prove nothing']);
    const s1Only = [msg(0), msg(2)];
    expect(loadProblems(record(s1Only), found(s1Only), ['s1', 's2']).problems).toEqual(['no acknowledged delivery to s2: the check would prove nothing there']);
  });

  it('knows the load messages of one load by their Message-ID', () => {
    expect(loadIdOf('<L-7@load.slotctl.test>', 'L')).toBe('L-7');
    expect(loadIdOf('<L-7@load.slotctl.test>', 'M')).toBeUndefined();
    expect(loadIdOf('<L-7@example.org>', 'L')).toBeUndefined();
    expect(loadIdOf('<L-x7@load.slotctl.test>', 'L')).toBeUndefined();
  });
});

describe('the load generator', () => {
  const dir = tempDir('load-record');
  afterAll(() => removeDir(dir));

  async function run(name: string, behave: (n: number) => Behaviour, drain: string, dead = false) {
    const server = await fakeLmtp(behave);
    const out = join(dir, `${name}.ndjson`);
    // the fake server listens on 127.0.0.1 only: a store on 127.0.0.2 refuses every connection
    const targets = [{ store: 's1', host: '127.0.0.1', users: ['ann', 'ben'] }, ...(dead ? [{ store: 'dead', host: '127.0.0.2', users: ['ann'] }] : [])];
    const child = execa('node', ['--import', 'tsx', join(ROOT, 'tools', 'load-generator.ts'), '--targets', JSON.stringify(targets), '--rate', '50', '--out', out, '--prefix', name, '--port', String(server.port), '--drain', drain], { cwd: ROOT, reject: false });
    // until more than ten deliveries are acknowledged in the record (tsx starts slowly on a busy host; SIGTERM before
    // its handler kills it). Counting what the server received was not enough: with every other connection cut after
    // its data, 30 receptions once made only 9 acknowledgements.
    const acked = () => (existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter((l) => l.includes('"type":"ack"')).length : 0);
    await waitFor('more than ten acknowledged deliveries', () => (acked() > 10 && server.received.length >= 30 ? true : undefined), 30_000, 50);
    child.kill('SIGTERM');
    const result = await child;
    await server.close();
    expect(result.exitCode, result.stderr).toBe(0);
    return { server, record: parseLoadRecord(readFileSync(out, 'utf8')), stdout: JSON.parse(result.stdout.trim().split('\n').pop()!) as { inFlight: number; acked: number } };
  }
  it('keeps delivering to the other stores while one refuses every connection, and reports that one in flight', async () => {
    const { record } = await run('dead', () => 'accept', '500', true); // (run waits for more than ten acks)
    expect(record.acks.every((a) => a.store === 's1')).toBe(true);
    expect(record.summary!.inFlight).toBeGreaterThan(4); // more than one store's worth of concurrent deliveries
    expect(new Set(record.summary!.inFlightMessages.map((m) => m.store))).toEqual(new Set(['dead']));
  }, 60_000);

  const foundOn = (stored: string[], prefix: string): FoundLoad => {
    const out: FoundLoad = { s1: {} };
    for (const raw of stored) {
      const id = loadIdOf(/^Message-ID: (.*)$/m.exec(raw)![1]!.trim(), prefix)!;
      const user = /^To: (\w+)@/m.exec(raw)![1]!;
      (out.s1![user] ??= []).push(id);
    }
    return out;
  };

  it('records deliveries cut off after their data, whose retries leave duplicates only an explanation lets pass', async () => {
    // every other connection stores the message and cuts the connection before its 250: the retry stores it again
    const { server, record } = await run('cut', (n) => (n % 2 ? 'accept' : 'store-and-cut'), '10000'); // (> 10 acks)
    expect(record.summary).toMatchObject({ prefix: 'cut', inFlight: 0 });
    expect(record.acks.some((a) => a.cutAfterData > 0)).toBe(true);
    // each cut says when, where and why, and the problem line carries it
    const cut = record.acks.find((a) => a.cutAfterData > 0)!;
    const each = { at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), ms: expect.any(Number), host: '127.0.0.1', reason: expect.stringMatching(/^after data: /) };
    expect(cut.cuts).toEqual(new Array(cut.cutAfterData).fill(each));
    const stored = foundOn(server.stored, 'cut');
    expect(loadProblems(record, stored, ['s1']).problems.some((p) => /copies of cut-.*; cut at .* to 127\.0\.0\.1: after data: /.test(p))).toBe(true);
    expect(loadProblems(record, stored, ['s1'], { duplicatesFromRetries: 'the fake server cut them after their data' }).problems).toEqual([]);
  }, 60_000);

  it('reports deliveries still in flight when its drain time runs out, and the check fails them', async () => {
    const { server, record, stdout } = await run('stuck', (n) => (n === 3 ? 'silent' : 'accept'), '100');
    expect(stdout.inFlight).toBeGreaterThan(0);
    expect(record.summary!.inFlightMessages.length).toBe(stdout.inFlight);
    expect(loadProblems(record, foundOn(server.stored, 'stuck'), ['s1']).problems).toEqual(expect.arrayContaining([expect.stringMatching(/still in flight when the load stopped/)]));
  }, 60_000);
});
