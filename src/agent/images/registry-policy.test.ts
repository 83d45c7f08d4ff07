import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PullPolicyError, isLocalOnly, pullPolicy } from './registry-policy.js';
import { parseImageReference } from './reference.js';

describe('pullPolicy', () => {
  it('defaults to Always for :latest or no tag, IfNotPresent for other tags and digests', () => {
    assert.equal(pullPolicy(parseImageReference('quay.io/a/b'), undefined), 'Always');
    assert.equal(pullPolicy(parseImageReference('quay.io/a/b:latest'), ''), 'Always');
    assert.equal(pullPolicy(parseImageReference('quay.io/a/b:v1'), undefined), 'IfNotPresent');
    assert.equal(pullPolicy(parseImageReference(`quay.io/a/b@sha256:${'a'.repeat(64)}`), undefined), 'IfNotPresent');
  });

  it('takes the given policy, and rejects an unknown one', () => {
    assert.equal(pullPolicy(parseImageReference('quay.io/a/b:v1'), 'Always'), 'Always');
    assert.equal(pullPolicy(parseImageReference('quay.io/a/b'), 'Never'), 'Never');
    assert.throws(() => pullPolicy(parseImageReference('quay.io/a/b'), 'always'), (err: unknown) => err instanceof PullPolicyError && /"always" is not one of Always, IfNotPresent, Never/.test(err.message));
  });
});

describe('isLocalOnly', () => {
  it('is true for localhost without a port only', () => {
    assert.equal(isLocalOnly(parseImageReference('localhost/vireo/tiny:latest')), true);
    assert.equal(isLocalOnly(parseImageReference('localhost:5000/vireo/tiny')), false);
    assert.equal(isLocalOnly(parseImageReference('127.0.0.1:5000/vireo/tiny')), false);
    assert.equal(isLocalOnly(parseImageReference('busybox')), false);
  });
});
