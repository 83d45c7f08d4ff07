import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bearerMatches } from './endpoint.js';

test('only "Bearer <the token>" matches', () => {
  const token = 'a'.repeat(64);
  assert.equal(bearerMatches(`Bearer ${token}`, token), true);
  assert.equal(bearerMatches(`bearer ${token} `, token), true, 'the scheme is case-insensitive, as in RFC 6750');
  assert.equal(bearerMatches(undefined, token), false);
  assert.equal(bearerMatches('', token), false);
  assert.equal(bearerMatches(`Basic ${token}`, token), false);
  assert.equal(bearerMatches(`Bearer ${token.slice(1)}`, token), false, 'a prefix');
  assert.equal(bearerMatches(`Bearer ${token}a`, token), false, 'a longer token');
  assert.equal(bearerMatches('Bearer ', ''), false, 'an empty token never matches');
});
