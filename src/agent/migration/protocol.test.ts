import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMigrationAnswer, parseMigrationCommand } from './protocol.js';

test('migration steps parse from the wire, and bad ones are refused saying what is wrong', () => {
  const target = { address: '10.0.0.2', migrationPort: 40000, nbdPort: 40001, exports: ['disk0', 'disk1'] };
  assert.deepEqual(parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, bandwidthBytesPerSecond: 1048576 }), { step: 'start-source', migrationUid: 'u', target, bandwidthBytesPerSecond: 1048576 });
  assert.deepEqual(parseMigrationCommand({ step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2' }), { step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2' });
  assert.deepEqual(parseMigrationCommand({ step: 'cancel-source', migrationUid: 'u', extra: 1 }), { step: 'cancel-source', migrationUid: 'u' });
  assert.throws(() => parseMigrationCommand({ step: 'reboot', migrationUid: 'u' }), /unknown migration step "reboot"/);
  assert.throws(() => parseMigrationCommand({ step: 'source-status' }), /migrationUid is missing/);
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target: { ...target, nbdPort: 70000 } }), /nbdPort must be a TCP port/);
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target: { ...target, exports: ['disk0;rm'] } }), /block node names/);
  assert.throws(() => parseMigrationCommand([]), /JSON object/);
  assert.deepEqual(parseMigrationAnswer({ source: { state: 'completed', downtimeMs: 42, totalTimeMs: 900, disksCopied: true } }), { source: { state: 'completed', downtimeMs: 42, totalTimeMs: 900, disksCopied: true } });
  assert.throws(() => parseMigrationAnswer({ source: { state: 'flying' } }), /unknown source state/);
});

test('a target\'s copied claim volumes parse from the wire; a relative path is refused', () => {
  const target = { address: '10.0.0.2', migrationPort: 40000, nbdPort: 40001, exports: ['disk0'], volumes: [{ claimUid: 'c1', persistentVolume: 'pvc-c1', path: '/data/volumes/pvc-c1' }] };
  assert.deepEqual(parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target }), { step: 'start-source', migrationUid: 'u', target });
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target: { ...target, volumes: [{ claimUid: 'c1', persistentVolume: 'pvc-c1', path: 'volumes/x' }] } }), /absolute path/);
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target: { ...target, volumes: {} } }), /must be a list/);
});

test('the settings of a migration travel with its steps, checked, and the source reports its mode', () => {
  const target = { address: '10.0.0.2', migrationPort: 40000, nbdPort: 40001, exports: [] };
  const convergence = { allowAutoConverge: false, allowPostCopy: true, allowWorkloadDisruption: true, completionTimeoutPerGiB: 150, progressTimeoutSeconds: 150 };
  assert.deepEqual(parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, convergence }), { step: 'start-source', migrationUid: 'u', target, convergence });
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, convergence: { ...convergence, completionTimeoutPerGiB: -1 } }), /convergence.completionTimeoutPerGiB must be a whole number of seconds/);
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, convergence: { ...convergence, allowPostCopy: 'yes' } }), /convergence.allowPostCopy must be true or false/);
  assert.deepEqual(parseMigrationCommand({ step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2', allowPostCopy: true }), { step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2', allowPostCopy: true });
  assert.deepEqual(parseMigrationCommand({ step: 'resume-target', migrationUid: 'u' }), { step: 'resume-target', migrationUid: 'u' });
  assert.deepEqual(parseMigrationAnswer({ source: { state: 'migrating', mode: 'PostCopy', switchedOver: true } }), { source: { state: 'migrating', mode: 'PostCopy', switchedOver: true } });
  assert.deepEqual(parseMigrationAnswer({ source: { state: 'failed', aborted: true, message: 'm', mode: 'Sideways' } }), { source: { state: 'failed', aborted: true, message: 'm' } }, 'an unknown mode is dropped');
});

test('a command\'s TLS credentials parse from the wire; anything but PEM is refused', () => {
  const tls = { caCert: '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n', cert: '-----BEGIN CERTIFICATE-----\nTEVBRg==\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n' };
  assert.deepEqual(parseMigrationCommand({ step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2', tls }), { step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: '10.0.0.2', tls });
  const target = { address: '10.0.0.2', migrationPort: 40000, nbdPort: 40001, exports: [] };
  assert.deepEqual(parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, tls }), { step: 'start-source', migrationUid: 'u', target, tls });
  assert.throws(() => parseMigrationCommand({ step: 'start-source', migrationUid: 'u', target, tls: { ...tls, key: 'secret' } }), /tls.key must be a PEM private key/);
  assert.throws(() => parseMigrationCommand({ step: 'prepare-target', migrationUid: 'u', vmiUid: 'v', address: 'a', tls: 'yes' }), /tls must be an object/);
});
