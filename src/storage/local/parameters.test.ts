import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClassParameters } from './parameters.js';

test('class parameters default to thin raw files and accept qcow2 and preallocation', () => {
  assert.deepEqual(parseClassParameters('local', {}), { parameters: { format: 'raw', preallocation: 'off' } });
  assert.deepEqual(parseClassParameters('q', { format: 'qcow2', preallocation: 'metadata' }), { parameters: { format: 'qcow2', preallocation: 'metadata' } });
  assert.deepEqual(parseClassParameters('f', { preallocation: 'falloc' }), { parameters: { format: 'raw', preallocation: 'falloc' } });
});

test('bad class parameters say which class, which value, and what to use instead', () => {
  const error = (params: Record<string, string>): string => {
    const parsed = parseClassParameters('fast', params);
    assert.ok('error' in parsed, `expected ${JSON.stringify(params)} to be refused`);
    return parsed.error;
  };
  assert.match(error({ format: 'vmdk' }), /StorageClass "fast" has parameter format "vmdk".*use raw or qcow2/);
  assert.match(error({ preallocation: 'some' }), /preallocation "some": use off, metadata, falloc or full/);
  assert.match(error({ preallocation: 'metadata' }), /only qcow2 volumes have/);
  assert.match(error({ 'topolvm.io/device-class': 'ssd' }), /unknown parameter "topolvm.io\/device-class"/);
});

test('encryption and compression parameters', () => {
  assert.deepEqual(parseClassParameters('vault', { format: 'qcow2', encryption: 'luks', encryptionSecretName: 'vault-key', encryptionSecretNamespace: 'default', compression: 'true' }), {
    parameters: { format: 'qcow2', preallocation: 'off', encryption: { format: 'luks', secret: { namespace: 'default', name: 'vault-key' } }, compression: true },
  });
  assert.deepEqual(parseClassParameters('plain', { encryption: 'none', compression: 'false' }), { parameters: { format: 'raw', preallocation: 'off' } });
  const error = (params: Record<string, string>): string => {
    const parsed = parseClassParameters('x', params);
    assert.ok('error' in parsed, `expected ${JSON.stringify(params)} to be refused`);
    return parsed.error;
  };
  assert.match(error({ encryption: 'aes' }), /encryption "aes": use "luks"/);
  assert.match(error({ encryption: 'luks' }), /no key: set encryptionSecretName and encryptionSecretNamespace/);
  assert.match(error({ encryptionSecretName: 'k', encryptionSecretNamespace: 'd' }), /no encryption "luks"/);
  assert.match(error({ encryption: 'luks', encryptionSecretName: 'Bad_Name', encryptionSecretNamespace: 'd' }), /not a Secret name/);
  assert.match(error({ compression: 'yes' }), /compression "yes": use "true" or "false"/);
  assert.match(error({ compression: 'true' }), /only qcow2 volumes have/);
});
