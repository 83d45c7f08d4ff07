import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { credentialHash, credentialOfSecret, newNodeCredential, nodeCredentialSecret, nodeNameOfCredential, parseJoinRequest, versionsCompatible, vireoVersion } from './node-credential.js';

test('vireoVersion is the package version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.equal(vireoVersion, pkg.version);
});

test('a credential names its node, dots included, and its Secret keeps only the hash', () => {
  const credential = newNodeCredential('rack-4.node-b');
  assert.equal(nodeNameOfCredential(credential), 'rack-4.node-b');
  assert.notEqual(newNodeCredential('rack-4.node-b'), credential, 'random');
  assert.equal(nodeNameOfCredential('abcdef.0123456789abcdef'), undefined);
  assert.equal(nodeNameOfCredential('vireo-node.nosecret'), undefined);
  const secret = nodeCredentialSecret('rack-4.node-b', credential, 'abcdef');
  assert.equal(secret.metadata.name, 'vireo-node-rack-4.node-b');
  assert.ok(!JSON.stringify(secret).includes(credential.slice(-64)));
  assert.deepEqual(credentialOfSecret(secret), { nodeName: 'rack-4.node-b', hash: credentialHash(credential) });
  assert.equal(credentialOfSecret({ ...secret, type: 'Opaque' }), undefined);
});

test('versions are compatible when major.minor agree', () => {
  assert.equal(versionsCompatible('0.1.0', '0.1.7'), true);
  assert.equal(versionsCompatible('v0.1.2+dirty', '0.1.0'), true);
  assert.equal(versionsCompatible('0.2.0', '0.1.0'), false);
  assert.equal(versionsCompatible('1.1.0', '0.1.0'), false);
  assert.equal(versionsCompatible('latest', '0.1.0'), false);
});

test('join requests are parsed strictly', () => {
  assert.deepEqual(parseJoinRequest({ nodeName: 'b', version: '0.1.0' }), { nodeName: 'b', version: '0.1.0' });
  assert.throws(() => parseJoinRequest({ nodeName: 'b' }), /needs a non-empty string "version"/);
  assert.throws(() => parseJoinRequest({ nodeName: 'b', version: '0.1.0', admin: true }), /unknown fields: admin/);
  assert.throws(() => parseJoinRequest('b'), /must be a JSON object/);
});
