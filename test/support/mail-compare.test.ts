// The master/replica comparison can fail: a message missing, a flag, a body, a folder, a user, a second copy.
import { describe, expect, it } from 'vitest';
import { diffSnapshots, messageCount, type MessageFacts, type Snapshot } from './mail-compare.js';

const m = (id: string, flags: string[] = [], sha256 = `hash-of-${id}`): MessageFacts => ({ messageId: `<${id}@x>`, flags, sha256 });
const base = (): Snapshot => ({ ann: { INBOX: [m('a'), m('b', ['\\Seen'])], Projects: [m('p')] }, ben: { INBOX: [m('c')] } });

describe('master against replica', () => {
  it('finds nothing between equal snapshots, and counts their messages', () => {
    expect(diffSnapshots(base(), base())).toEqual([]);
    expect(messageCount(base())).toBe(4);
  });

  it('names each kind of difference', () => {
    const cases: [string, (s: Snapshot) => void, RegExp][] = [
      ['a missing message', (s) => s.ann!.INBOX!.pop(), /^ann INBOX: only on the master: <b@x> \[\\Seen\]/],
      ['a flag', (s) => (s.ann!.INBOX![0] = m('a', ['\\Flagged'])), /^ann INBOX: only on the master: <a@x> \[\]/],
      ['a body', (s) => (s.ann!.INBOX![0] = m('a', [], 'other')), /^ann INBOX: only on the master: <a@x>/],
      ['a folder', (s) => delete s.ann!.Projects, /^ann Projects: folder only on the master$/],
      ['a user', (s) => delete s.ben, /^user ben only on the master$/],
      ['a second copy', (s) => s.ben!.INBOX!.push(m('c')), /^ben INBOX: copies differ: 1 on the master, 2 on the replica$/],
    ];
    for (const [what, change, want] of cases) {
      const replica = base();
      change(replica);
      const diffs = diffSnapshots(base(), replica);
      expect(diffs.length, what).toBeGreaterThan(0);
      expect(diffs[0], what).toMatch(want);
    }
  });
});
