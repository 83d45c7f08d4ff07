import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caSignature, joinTokenExpired, joinTokenOfSecret, joinTokenSecret, newJoinToken, parseJoinToken } from './join-token.js';

test('join tokens have kubeadm\'s shape and parse back', () => {
  for (let i = 0; i < 50; i++) {
    const token = newJoinToken();
    assert.deepEqual(parseJoinToken(`${token.id}.${token.secret}`), token);
  }
  assert.equal(parseJoinToken('ABCDEF.0123456789abcdef'), undefined, 'uppercase');
  assert.equal(parseJoinToken('abcdef.0123456789abcde'), undefined, 'a short secret');
  assert.equal(parseJoinToken('abcdef:0123456789abcdef'), undefined);
  assert.equal(parseJoinToken(' abcdef.0123456789abcdef'), undefined);
});

test('a token round-trips through its bootstrap-token Secret', () => {
  const expiration = new Date('2030-01-02T03:04:05Z');
  const secret = joinTokenSecret({ id: 'abcdef', secret: '0123456789abcdef' }, { expiration, description: 'rack 4' });
  assert.equal(secret.metadata.name, 'bootstrap-token-abcdef');
  assert.equal(secret.metadata.namespace, 'kube-system');
  assert.equal((secret as { type?: string }).type, 'bootstrap.kubernetes.io/token');
  assert.equal(Buffer.from((secret as { data?: Record<string, string> }).data?.['expiration'] ?? '', 'base64').toString(), '2030-01-02T03:04:05Z');
  assert.deepEqual(joinTokenOfSecret(secret), { id: 'abcdef', secret: '0123456789abcdef', usages: ['authentication'], expiration, description: 'rack 4' });
  assert.equal(joinTokenOfSecret({ ...secret, type: 'Opaque' }), undefined, 'another type');
  assert.equal(joinTokenOfSecret({ ...secret, metadata: { ...secret.metadata, name: 'bootstrap-token-zzzzzz' } }), undefined, 'a name that is not its id');
});

test('expiry: at the expiration instant a token is expired; an unreadable one counts as expired', () => {
  const token = { id: 'abcdef', secret: '0123456789abcdef', usages: [], expiration: new Date('2030-01-01T00:00:00Z') };
  assert.equal(joinTokenExpired(token, new Date('2029-12-31T23:59:59Z')), false);
  assert.equal(joinTokenExpired(token, new Date('2030-01-01T00:00:00Z')), true);
  assert.equal(joinTokenExpired({ ...token, expiration: new Date('not a date') }, new Date(0)), true);
  assert.equal(joinTokenExpired({ id: 'abcdef', secret: '0123456789abcdef', usages: [] }, new Date('2100-01-01')), false, 'no expiration');
});

test('the CA signature depends on the whole token and the CA', () => {
  const a = caSignature('CA-1', { id: 'abcdef', secret: '0123456789abcdef' });
  assert.equal(a, caSignature('CA-1', { id: 'abcdef', secret: '0123456789abcdef' }));
  assert.notEqual(a, caSignature('CA-1', { id: 'abcdef', secret: '0123456789abcdeg' }));
  assert.notEqual(a, caSignature('CA-2', { id: 'abcdef', secret: '0123456789abcdef' }));
});
