import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PullSecretError, basicAuthorization, credentialsFromDockerConfig, parseChallenge } from './registry-auth.js';

describe('parseChallenge', () => {
  it('reads a Bearer challenge with quoted parameters, commas inside a scope included', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push"'), {
      scheme: 'bearer', realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull,push',
    });
    assert.deepEqual(parseChallenge('bearer Realm="https://quay.io/v2/auth", service=quay.io'), { scheme: 'bearer', realm: 'https://quay.io/v2/auth', service: 'quay.io' });
    assert.deepEqual(parseChallenge('Bearer realm="https://x/t\\"q"'), { scheme: 'bearer', realm: 'https://x/t"q' });
  });

  it('reads Basic, and nothing it cannot use', () => {
    assert.deepEqual(parseChallenge('Basic realm="vireo-test"'), { scheme: 'basic' });
    assert.equal(parseChallenge('Bearer service="x"'), undefined, 'a Bearer challenge needs a realm');
    assert.equal(parseChallenge('Negotiate abc'), undefined);
    assert.equal(parseChallenge(''), undefined);
  });
});

describe('credentialsFromDockerConfig', () => {
  const auth = (user: string, password: string): string => Buffer.from(`${user}:${password}`).toString('base64');

  it('finds the registry by host, whatever scheme or path the key has', () => {
    const config = JSON.stringify({ auths: {
      'https://index.docker.io/v1/': { auth: auth('hub', 'p1') },
      'quay.io': { username: 'q', password: 'p:2' },
      'http://127.0.0.1:5000/v2/': { auth: auth('local', 'p:3') },
    } });
    assert.deepEqual(credentialsFromDockerConfig(config, 'docker.io'), { username: 'hub', password: 'p1' });
    assert.deepEqual(credentialsFromDockerConfig(config, 'quay.io'), { username: 'q', password: 'p:2' });
    assert.deepEqual(credentialsFromDockerConfig(config, '127.0.0.1:5000'), { username: 'local', password: 'p:3' });
    assert.equal(credentialsFromDockerConfig(config, '127.0.0.1:5001'), undefined);
    assert.equal(credentialsFromDockerConfig(config, 'ghcr.io'), undefined);
  });

  it('says what is wrong with a malformed file', () => {
    assert.throws(() => credentialsFromDockerConfig('{', 'quay.io'), (err: unknown) => err instanceof PullSecretError && /not JSON/.test(err.message));
    assert.throws(() => credentialsFromDockerConfig('{}', 'quay.io'), /no "auths" object/);
    assert.throws(() => credentialsFromDockerConfig(JSON.stringify({ auths: { 'quay.io': { auth: Buffer.from('nocolon').toString('base64') } } }), 'quay.io'), /not base64 of "user:password"/);
    assert.throws(() => credentialsFromDockerConfig(JSON.stringify({ auths: { 'quay.io': {} } }), 'quay.io'), /neither "auth" nor "username" and "password"/);
  });

  it('makes a Basic header', () => {
    assert.equal(basicAuthorization({ username: 'a', password: 'b:c' }), `Basic ${Buffer.from('a:b:c').toString('base64')}`);
  });
});
