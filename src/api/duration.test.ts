import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ageOf, humanDuration } from './duration.js';

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;

test('HumanDuration boundaries match apimachinery', () => {
  const cases: [number, string][] = [
    [-2 * s, '<invalid>'],
    [-1500, '0s'],
    [-999, '0s'],
    [0, '0s'],
    [45 * s, '45s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [5 * m + 30 * s, '5m30s'],
    [9 * m + 59 * s, '9m59s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [3 * h + 10 * m, '3h10m'],
    [7 * h + 59 * m, '7h59m'],
    [8 * h + 30 * m, '8h'],
    [47 * h, '47h'],
    [48 * h, '2d'],
    [4 * d + 2 * h, '4d2h'],
    [7 * d + 23 * h, '7d23h'],
    [8 * d + 5 * h, '8d'],
    [729 * d, '729d'],
    [730 * d, '2y'],
    [760 * d, '2y30d'],
    [8 * 365 * d, '8y'],
    [10 * 365 * d + 100 * d, '10y'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms}ms`);
});

test('ageOf parses RFC 3339 timestamps', () => {
  const now = new Date('2024-01-01T01:00:00Z');
  assert.equal(ageOf('2024-01-01T00:55:00Z', now), '5m');
  assert.equal(ageOf('2024-01-01T02:55:00+02:00', now), '5m');
  assert.equal(ageOf('2024-01-01T00:59:59.5Z', now), '0s');
  assert.equal(ageOf('', now), '<unknown>');
  assert.equal(ageOf('yesterday', now), '<invalid>');
  assert.equal(ageOf('2024-01-01', now), '<invalid>');
});
