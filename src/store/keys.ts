/**
 * Key order and key ranges. Both backends order keys by Unicode code point,
 * which is what SQLite's BINARY collation gives for UTF-8 text, so that a
 * paged list walks keys in the same order whichever backend answers it.
 */

/** The half-open range `[from, to)` of keys a list or count reads; `to` undefined: no upper bound. */
export interface KeyRange {
  from: string;
  to: string | undefined;
}

/**
 * Compares keys by code point. JavaScript's `<` compares UTF-16 code units,
 * which disagrees with code point order only when a surrogate (U+D800–DFFF)
 * meets a unit in U+E000–FFFF, so only that case is adjusted.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or
 * undefined when there is none (the empty prefix, or one made only of
 * U+10FFFF).
 */
export function prefixEnd(prefix: string): string | undefined {
  const points = Array.from(prefix);
  while (points.length > 0) {
    const last = points.pop()?.codePointAt(0) ?? 0x10ffff;
    if (last < 0x10ffff) {
      // A code point in the surrogate block cannot be encoded; the next real one is U+E000.
      const next = last + 1 >= 0xd800 && last + 1 <= 0xdfff ? 0xe000 : last + 1;
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/** The keys under `prefix` that are `>= startKey`. */
export function keyRange(prefix: string, startKey: string | undefined): KeyRange {
  const from = startKey !== undefined && compareKeys(startKey, prefix) > 0 ? startKey : prefix;
  return { from, to: prefixEnd(prefix) };
}
