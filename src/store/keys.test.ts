import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareKeys, keyRange, prefixEnd } from './keys.js';

function codePoints(s: string): number[] {
  return Array.from(s).map((c) => c.codePointAt(0) ?? 0);
}

function byCodePoint(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
  return x.length - y.length;
}

const samples = ['', 'a', 'a/', 'a/b', 'ab', 'b', '\u00e9', '\uffff', '\ufffd', '\u{1f600}', '\u{10ffff}', 'a\u{1f600}', 'a\uffff', 'z'];

describe('compareKeys', () => {
  it('orders by code point, as SQLite orders UTF-8 text', () => {
    for (const a of samples) {
      for (const b of samples) assert.equal(Math.sign(compareKeys(a, b)), Math.sign(byCodePoint(a, b)), `${a} vs ${b}`);
    }
  });
});

describe('prefixEnd', () => {
  it('bounds exactly the keys that start with the prefix', () => {
    for (const prefix of samples.filter((s) => s !== '' && s !== '\u{10ffff}')) {
      const end = prefixEnd(prefix);
      assert.ok(end !== undefined, prefix);
      for (const key of samples.map((s) => prefix + s).concat(samples)) {
        const inside: boolean = compareKeys(key, prefix) >= 0 && compareKeys(key, end) < 0;
        assert.equal(inside, key.startsWith(prefix), `${key} under ${prefix}`);
      }
    }
  });

  it('has no end for the empty prefix or one of only U+10FFFF, and skips surrogates', () => {
    assert.equal(prefixEnd(''), undefined);
    assert.equal(prefixEnd('\u{10ffff}\u{10ffff}'), undefined);
    assert.equal(prefixEnd('a\u{10ffff}'), 'b');
    assert.equal(prefixEnd('/r/'), '/r0');
    assert.equal(prefixEnd('\ud7ff'), '\ue000');
  });
});

describe('keyRange', () => {
  it('starts at startKey only when it lies after the prefix', () => {
    assert.deepEqual(keyRange('/r/', undefined), { from: '/r/', to: '/r0' });
    assert.deepEqual(keyRange('/r/', '/r/b'), { from: '/r/b', to: '/r0' });
    assert.deepEqual(keyRange('/r/', '/a'), { from: '/r/', to: '/r0' });
  });
});
