// Each loopback test file has a block (and a store prefix) of its own, takes it from the registry, and no block is
// also used by a benchmark or the demo. A file that picks its own number fails here, not as an agent that took
// another file's service IP on a busy CI run.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../tools/local-cluster.js';
import { LOOPBACK_BLOCKS, RESERVED_BLOCKS, loopbackBlock } from './loopback-blocks.js';

function files(dir: string, match: RegExp): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
      const path = join(d, e.name);
      if (e.isDirectory()) walk(path);
      else if (match.test(e.name)) out.push(relative(ROOT, path));
    }
  };
  walk(join(ROOT, dir));
  return out.sort();
}

/** The /16 blocks a file writes down itself: `127.N.` literals and `NET = N` constants, N not 0. */
function literalBlocks(text: string): number[] {
  // also as a regular expression (127\.42\.3\.1)
  const found = [...text.matchAll(/\b127\\?\.(\d+)\\?\.\d+\\?\.\d+/g), ...text.matchAll(/\bNET\s*=\s*(\d+)/g)].map((m) => Number(m[1]));
  return [...new Set(found.filter((n) => n !== 0))].sort((a, b) => a - b);
}

const entries = Object.entries(LOOPBACK_BLOCKS);

describe('loopback address blocks', () => {
  it('gives every file a block and a prefix of its own, apart from the reserved blocks', () => {
    expect(entries.length).toBeGreaterThan(0);
    const nets = [...entries.map(([, b]) => b.net), ...Object.keys(RESERVED_BLOCKS).map(Number)];
    const twice = nets.filter((n, i) => nets.indexOf(n) !== i);
    expect(twice, 'blocks listed twice').toEqual([]);
    const prefixes = entries.map(([, b]) => b.prefix);
    expect(prefixes.filter((p, i) => prefixes.indexOf(p) !== i), 'prefixes listed twice').toEqual([]);
    for (const [file, b] of entries) {
      expect(Number.isInteger(b.net) && b.net >= 1 && b.net <= 255, `${file}: 127.${b.net}.0.0/16`).toBe(true);
      expect(b.prefix, file).toMatch(/^[a-z]{2}$/);
    }
  });

  it('is what every listed file uses, and only through loopbackBlock', () => {
    for (const [file] of entries) {
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true);
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(text, file).toContain('loopbackBlock(import.meta.url)');
      expect(literalBlocks(text), `${file} writes its own block`).toEqual([]);
    }
    expect(loopbackBlock(new URL('../auth.test.ts', import.meta.url).href)).toEqual(LOOPBACK_BLOCKS['test/auth.test.ts']);
    expect(() => loopbackBlock(import.meta.url)).toThrow(/has no loopback block/);
  });

  it('lists every test file that runs agents on loopback', () => {
    const tests = [...files('test', /\.test\.ts$/), ...files('packages', /\.test\.ts$/)];
    expect(tests.length).toBeGreaterThan(10);
    // agents of a LocalCluster take loopback addresses (a NetnsCluster's take addresses in their namespaces)
    const agents = tests.filter((f) => {
      const text = readFileSync(join(ROOT, f), 'utf8');
      return /\btwoMachineCluster\(/.test(text) || (text.includes('new LocalCluster(') && /\b(startAgent|bringUp)\(/.test(text));
    });
    expect(agents.length).toBeGreaterThan(0);
    expect(agents.filter((f) => !LOOPBACK_BLOCKS[f]), 'loopback-cluster tests missing from LOOPBACK_BLOCKS').toEqual([]);
    for (const f of tests.filter((x) => !LOOPBACK_BLOCKS[x] && x !== 'test/support/loopback-blocks.test.ts')) expect(literalBlocks(readFileSync(join(ROOT, f), 'utf8')), `${f} writes a block of its own`).toEqual([]);
  });

  it('reserves every block that benchmarks, tools and scripts write down', () => {
    const others = [...files('bench', /\.ts$/), ...files('tools', /\.ts$/), ...files('scripts', /\.ts$/)];
    expect(others.length).toBeGreaterThan(0);
    for (const f of others) {
      for (const n of literalBlocks(readFileSync(join(ROOT, f), 'utf8'))) expect(RESERVED_BLOCKS[n] ?? '', `block ${n} in ${f}`).toContain(f);
    }
  });
});
