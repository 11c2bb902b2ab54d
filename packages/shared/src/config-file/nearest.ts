// "Did you mean": the known word closest to a mistyped one, if it is close enough to be what was meant.

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** The closest of `known` to `word` (dashes read as underscores), or undefined when none is within a third of it. */
export function nearest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase().replaceAll('-', '_');
  let best: { key: string; d: number } | undefined;
  for (const key of known) {
    const d = distance(w, key);
    if (!best || d < best.d) best = { key, d };
  }
  return best && best.d <= Math.max(2, Math.floor(w.length / 3)) ? best.key : undefined;
}
