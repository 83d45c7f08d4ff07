import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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

test('an agent that holds only the SHA-256 of the server\'s token checks it the same way', () => {
  const token = 'a'.repeat(64);
  const sha256 = createHash('sha256').update(token).digest('hex');
  assert.equal(bearerMatches(`Bearer ${token}`, { sha256 }), true);
  assert.equal(bearerMatches(`Bearer ${token}b`, { sha256 }), false);
  assert.equal(bearerMatches(`Bearer ${sha256}`, { sha256 }), false, 'the digest itself is not the token');
  assert.equal(bearerMatches(`Bearer ${token}`, { sha256: 'not hex' }), false);
});
