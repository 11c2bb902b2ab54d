// The history file: written by clients (invoke, then complete), read back whole; a torn last line is dropped and
// reported, a bad line anywhere else stops the check with its file and line; the body hash survives LMTP's headers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../support/fixtures.js';
import { HistoryLineError, HistoryWriter, bodyHash, parseHistory, readHistory } from './history.js';

const dir = tempDir('soak-history');
afterAll(() => removeDir(dir));

const invoke = (id: string, extra: object = {}) => JSON.stringify({ type: 'invoke', id, client: 'c1', kind: 'deliver', store: 's01', user: 'ann', messageId: `<${id}@soak>`, start: 10, ...extra });
const complete = (id: string, extra: object = {}) => JSON.stringify({ type: 'complete', id, client: 'c1', end: 20, outcome: 'ok', ...extra });

describe('the history file', () => {
  it('round-trips what a client wrote, an operation that never completed included', () => {
    let t = 0;
    const path = join(dir, 'c1.ndjson');
    const w = new HistoryWriter(path, 'c1', () => (t += 5));
    const a = w.invoke({ kind: 'append', store: 's01', user: 'ann', folder: 'INBOX/Work', messageId: '<a@soak>', bodyHash: 'h', flags: ['\\Seen'] });
    w.nemesis({ kind: 'crash', target: 'm3', phase: 'start', step: 0 });
    w.complete(a, 'unknown', 'connection reset');
    w.invoke({ kind: 'deliver', store: 's01', user: 'ann', messageId: '<b@soak>' });
    w.close();
    const h = readHistory([path]);
    expect(h.operations).toEqual([
      { id: 'c1-1', client: 'c1', kind: 'append', store: 's01', user: 'ann', folder: 'INBOX/Work', messageId: '<a@soak>', bodyHash: 'h', flags: ['\\Seen'], start: 5, end: 15, outcome: 'unknown', detail: 'connection reset' },
      { id: 'c1-2', client: 'c1', kind: 'deliver', store: 's01', user: 'ann', messageId: '<b@soak>', start: 20 },
    ]);
    expect(h.nemesis).toEqual([{ at: 10, kind: 'crash', target: 'm3', phase: 'start', step: 0 }]);
    expect(readFileSync(path, 'utf8').split('\n')).toHaveLength(5); // four lines and the final newline
  });

  it('merges several clients, each id its own client’s', () => {
    const h = readHistory([]);
    expect(h.operations).toEqual([]);
    const two = parseHistory([invoke('x-1'), invoke('x-1', { client: 'c2', start: 5 }), complete('x-1')].join('\n') + '\n');
    expect(two.operations.map((o) => [o.client, o.start, o.outcome])).toEqual([['c2', 5, undefined], ['c1', 10, 'ok']]);
  });

  it('drops a torn last line and says so', () => {
    const h = parseHistory(`${invoke('a')}\n${complete('a')}\n{"type":"invoke","id":"b","cli`, 'c1.ndjson');
    expect(h.operations).toHaveLength(1);
    expect(h.torn).toEqual([{ source: 'c1.ndjson', line: 3, text: '{"type":"invoke","id":"b","cli' }]);
  });

  it('names the file and line of a bad line anywhere else', () => {
    expect(() => parseHistory(`${invoke('a')}\n{"type":"inv\n${complete('a')}\n`, 'c1.ndjson')).toThrow(new HistoryLineError('c1.ndjson', 2, 'not JSON', '{"type":"inv'));
    // a broken last line that did end with its newline was written whole: not torn, wrong
    expect(() => parseHistory(`${invoke('a')}\n{"type":"inv\n`, 'c1.ndjson')).toThrow(/c1.ndjson:2: not JSON/);
    expect(() => parseHistory(`${invoke('a', { messageId: undefined })}\n`, 'f')).toThrow(/f:1: deliver needs a messageId/);
    expect(() => parseHistory(`${invoke('a', { kind: 'move' })}\n`, 'f')).toThrow(/f:1: unknown operation kind move/);
    expect(() => parseHistory(`${invoke('a', { kind: 'create-folder', messageId: undefined })}\n`, 'f')).toThrow(/f:1: create-folder needs a folder/);
    expect(() => parseHistory(`${complete('a')}\n`, 'f')).toThrow(/f:1: completes c1\/a, which was never invoked/);
    expect(() => parseHistory(`${invoke('a')}\n${complete('a')}\n${complete('a')}\n`, 'f')).toThrow(/f:3: operation c1\/a completed twice/);
    expect(() => parseHistory(`${invoke('a')}\n${invoke('a')}\n`, 'f')).toThrow(/f:2: operation c1\/a invoked twice/);
    expect(() => parseHistory(`${invoke('a')}\n${complete('a', { outcome: 'maybe' })}\n`, 'f')).toThrow(/f:2: unknown outcome maybe/);
    expect(() => parseHistory(`${invoke('a')}\n${complete('a', { end: 3 })}\n`, 'f')).toThrow(/f:2: ends before it started/);
    expect(() => parseHistory(`{"type":"nemesis","at":1,"kind":"crash","target":"m1","phase":"middle"}\n`, 'f')).toThrow(/f:1: unknown phase middle/);
    expect(() => parseHistory('[1,2]\n', 'f')).toThrow(HistoryLineError);
  });
});

describe('the body hash', () => {
  it('is the same for the message as sent and as stored by LMTP (a Received header added, CRLF line ends)', () => {
    const sent = 'Message-ID: <a@soak>\nSubject: a\n\nline one\nline two\n';
    const stored = 'Return-Path: <x@y>\r\nReceived: from cl by m1 (LMTP)\r\nMessage-ID: <a@soak>\r\nSubject: a\r\n\r\nline one\r\nline two\r\n';
    expect(bodyHash(Buffer.from(stored))).toBe(bodyHash(sent));
    expect(bodyHash(sent.replace('two', 'too'))).not.toBe(bodyHash(sent));
  });
});
