import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validateKind } from './registry.js';

function dv(spec: Record<string, unknown>): KObject {
  return { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name: 'dv', namespace: 'default' }, spec };
}

const storage = { resources: { requests: { storage: '1Gi' } } };

function errors(obj: KObject, old?: KObject): [string, string][] {
  return validateKind('cdi.kubevirt.io', 'DataVolume', obj, old).map((e) => [e.field, e.reason]);
}

test('documented DataVolumes are admitted', () => {
  assert.deepEqual(errors(dv({ source: { http: { url: 'https://example.com/disk.qcow2' } }, storage })), []);
  assert.deepEqual(errors(dv({ source: { registry: { url: 'docker://quay.io/containerdisks/fedora:40' } }, storage })), []);
  assert.deepEqual(errors(dv({ source: { blank: {} }, pvc: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '500Mi' } } } })), []);
  // A clone into `storage` may leave the size to the source.
  assert.deepEqual(errors(dv({ source: { pvc: { name: 'golden', namespace: 'images' } }, storage: {} })), []);
  assert.deepEqual(errors(dv({ sourceRef: { kind: 'DataSource', name: 'fedora' }, storage: {} })), []);
  assert.deepEqual(errors(dv({ storage: { ...storage, dataSourceRef: { apiGroup: 'cdi.kubevirt.io', kind: 'VolumeImportSource', name: 'src' } } })), []);
});

test('exactly one of source and sourceRef, and exactly one source type', () => {
  assert.deepEqual(errors(dv({ storage })), [['spec.source', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, sourceRef: { kind: 'DataSource', name: 'x' }, storage })), [['spec.source', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {}, upload: {} }, storage })), [['spec.source', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: {}, storage })), [['spec.source', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ sourceRef: { kind: 'PersistentVolumeClaim', name: 'x' }, storage })), [['spec.sourceRef.kind', 'FieldValueInvalid']]);
});

test('a target is required: pvc or storage, not both, with a usable size', () => {
  assert.deepEqual(errors(dv({ source: { blank: {} } })), [['spec.storage', 'FieldValueRequired']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage, pvc: storage })), [['spec.pvc', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage: {} })), [['spec.storage.resources.requests.storage', 'FieldValueRequired']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage: { resources: { requests: { storage: '10Ki' } } } })), [
    ['spec.storage.resources.requests.storage', 'FieldValueInvalid'],
  ]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, pvc: storage })), [['spec.pvc.accessModes', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage: { ...storage, accessModes: ['ReadWriteSometimes'] } })), [['spec.storage.accessModes', 'FieldValueInvalid']]);
});

test('source details: URLs, registries and content types', () => {
  assert.deepEqual(errors(dv({ source: { http: { url: 'ftp://example.com/x' } }, storage })), [['spec.source.http.url', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { http: {} }, storage })), [['spec.source.http.url', 'FieldValueRequired']]);
  assert.deepEqual(errors(dv({ source: { registry: { url: 'https://quay.io/x' } }, storage })), [['spec.source.registry.url', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { registry: { imageStream: 'fedora' } }, storage })), [['spec.source.registry.pullMethod', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, contentType: 'archive', storage })), [['spec.contentType', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, contentType: 'zip', storage })), [['spec.contentType', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { pvc: { namespace: 'images' } }, storage })), [['spec.source.pvc', 'FieldValueInvalid']]);
  assert.deepEqual(errors(dv({ source: { vddk: { url: 'https://vcenter' } }, storage })), [['spec.source.vddk', 'FieldValueInvalid']]);
});

test('the spec is immutable, except checkpoints of a multi-stage import', () => {
  const old = dv({ source: { blank: {} }, storage });
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage: { resources: { requests: { storage: '2Gi' } } } }), old), [['spec', 'FieldValueForbidden']]);
  assert.deepEqual(errors(dv({ source: { blank: {} }, storage }), old), []);
  const vddk = { vddk: { url: 'https://vcenter', uuid: 'u', backingFile: 'f', thumbprint: 't', secretRef: 's' } };
  const warm = dv({ source: vddk, storage, checkpoints: [{ previous: '', current: 'snap-1' }] });
  const next = dv({ source: vddk, storage, checkpoints: [{ previous: '', current: 'snap-1' }, { previous: 'snap-1', current: 'snap-2' }], finalCheckpoint: true });
  assert.deepEqual(errors(next, warm), []);
});
