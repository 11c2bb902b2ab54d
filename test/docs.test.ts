// The parts of docs/ARCHITECTURE.md drawn from the code (tools/docs.ts) are what the code says now.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DOC, render, sections, serviceRpcs } from '../tools/docs.js';

describe('docs from the code', () => {
  it('ARCHITECTURE.md holds the rule tables and the Admin RPC list as generated (run npm run docs)', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(render(doc) === doc, 'docs/ARCHITECTURE.md is stale: run npm run docs').toBe(true);
  });

  it('lists every rpc of a service with its comment, and fails on a doc without a part', () => {
    const proto = 'service X {\n  // does a\n  rpc A(Ra) returns (Pa);\n  rpc B(stream Rb) returns (stream Pb);\n}\n';
    expect(serviceRpcs(proto, 'X')).toEqual([
      { name: 'A', request: 'Ra', reply: 'Pa', doc: 'does a' },
      { name: 'B', request: 'Rb', reply: 'Pb', doc: '' },
    ]);
    expect(() => render('no markers', sections())).toThrow(/has no/);
    // a stale part is replaced, the text around it kept
    const stale = 'before\n<!-- generated: x (npm run docs) -->\nold\n<!-- end: x -->\nafter';
    expect(render(stale, { x: 'new' })).toBe('before\n<!-- generated: x (npm run docs) -->\nnew\n<!-- end: x -->\nafter');
  });
});
