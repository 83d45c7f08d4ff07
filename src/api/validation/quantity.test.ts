import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuantity } from './quantity.js';

test('quantities parse with binary, decimal and exponent suffixes', () => {
  assert.equal(parseQuantity('128Mi'), 128 * 2 ** 20);
  assert.equal(parseQuantity('1Gi'), 2 ** 30);
  assert.equal(parseQuantity('1024M'), 1.024e9);
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('1.5'), 1.5);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity(2), 2);
  assert.equal(parseQuantity('-1'), -1);
});

test('anything else is not a quantity', () => {
  for (const bad of ['', 'Gi', '1GB', '1 Gi', 'one', '1.2.3', null, {}]) assert.equal(parseQuantity(bad), undefined, JSON.stringify(bad));
});
